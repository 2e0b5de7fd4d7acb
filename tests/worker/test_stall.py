"""Stall detection on its own: the limit, the verdict (loading is never a stall), and the stacks
asked of real processes (a stopped one is named instead)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from worker.attempt.proctree import ProcessTree
from worker.attempt.stall import DEFAULT_FLOOR_SECONDS, dump_stacks, limit_seconds, stall_reason


def test_the_limit_is_the_setting_else_ten_median_steps_but_never_under_the_floor() -> None:
    assert limit_seconds(6.0, [100.0]) == 6.0
    assert limit_seconds(None, []) == DEFAULT_FLOOR_SECONDS
    assert limit_seconds(None, [1.0, 2.0, 900.0]) == DEFAULT_FLOOR_SECONDS  # median 2 s
    assert limit_seconds(None, [70.0, 80.0, 90.0]) == 800.0


def test_loading_is_never_a_stall() -> None:
    assert stall_reason(None, [], 10_000, 6.0) is None  # nothing shipped yet
    assert stall_reason(0, [], 10_000, 6.0) is None  # only the start event: still loading


def test_a_quiet_run_is_stalled_only_past_the_limit() -> None:
    assert stall_reason(7, [0.5, 0.5], 5.9, 6.0) is None
    assert stall_reason(7, [0.5, 0.5], 6.0, 6.0) == "stalled: no step for 6 s at step 7"
    # A resumed run's first logged step has no step time yet: it is judged from there.
    assert stall_reason(40, [], 601.0, None) == "stalled: no step for 600 s at step 40"


def test_stacks_are_asked_of_every_rank_and_a_stopped_one_is_named(tmp_path: Path) -> None:
    log = tmp_path / "ranks.log"
    rank = (
        "import faulthandler, signal, sys, time;"
        "faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True);"
        "print('ready', flush=True); time.sleep(60)"
    )
    parent = (
        "import subprocess, sys, time;"
        f"[subprocess.Popen([sys.executable, '-c', {rank!r}]) for _ in range(2)];"
        "time.sleep(60)"
    )
    with open(log, "ab") as out:
        root = subprocess.Popen([sys.executable, "-c", parent], stdout=out, stderr=out)
    tree = ProcessTree(root.pid)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and log.read_text().count("ready") < 2:
            tree.refresh()
            time.sleep(0.05)
        tree.refresh()
        ranks = tree.ranks()
        assert len(ranks) == 2
        ranks[1].send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        notes: list[str] = []
        dump_stacks(tree, notes.append, wait=1.0)
        assert f"rank pid {ranks[1].pid} is stopped (SIGSTOP): it cannot dump its stack" in notes
        assert notes[-1] == f"Python stacks of pids {ranks[0].pid} follow (faulthandler)"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "most recent call first" not in log.read_text():
            time.sleep(0.05)
        assert "most recent call first" in log.read_text()  # faulthandler's stack of rank 0
    finally:
        tree.stop(5, signal.SIGKILL)
        root.wait(timeout=10)
