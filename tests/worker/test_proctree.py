"""The attempt's process tree: found by walking /proc's children lists, the same as psutil's
scan of every process finds it, including a grandchild in a session of its own (as torch's
ranks are)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from worker.attempt import proctree
from worker.attempt.proctree import ProcessTree

# A launcher that starts a "rank" in its own session, which starts one more process.
LAUNCHER = """
import subprocess, sys, time
rank = '''
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
time.sleep(60)
'''
subprocess.Popen([sys.executable, "-c", rank], start_new_session=True)
time.sleep(60)
"""


@pytest.fixture
def launcher() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER], start_new_session=True)
    root = psutil.Process(proc.pid)
    deadline = time.monotonic() + 30
    while len(family := root.children(recursive=True)) < 2:
        assert time.monotonic() < deadline, "the launcher never started its processes"
        time.sleep(0.05)
    yield proc
    for p in [*family, root]:
        with contextlib.suppress(psutil.Error):
            p.kill()
    proc.wait()


@pytest.mark.parametrize("children_lists", [True, False], ids=["proc-children", "psutil"])
def test_refresh_finds_every_descendant(
    launcher: subprocess.Popen[bytes], children_lists: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if children_lists and not proctree._CHILDREN_LISTS:
        pytest.fail("this kernel has no /proc/<pid>/task/<tid>/children: the fast path is untested")
    monkeypatch.setattr(proctree, "_CHILDREN_LISTS", children_lists)
    expected = {launcher.pid} | {p.pid for p in psutil.Process(launcher.pid).children(True)}
    assert len(expected) == 3
    tree = ProcessTree(launcher.pid)
    assert {pid for pid, _ in tree.keys} == expected
    assert not tree.refresh()  # nothing new the second time


def test_a_rank_left_by_its_launcher_is_still_stopped(launcher: subprocess.Popen[bytes]) -> None:
    tree = ProcessTree(launcher.pid)
    ranks = {p.pid for p in tree.ranks()}
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    tree.refresh()  # the orphans (re-parented) are still known by (pid, start time)
    assert {p.pid for p in tree.ranks()} == ranks
    tree.stop(grace=2.0)
    assert not tree.alive()
