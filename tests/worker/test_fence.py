"""The fence between a worker and its ranks (``worker/fence.py``, ``worker/training/fencing.py``):
the ranks stop, before any save at that step, once the worker's file has gone untouched for the
fence's window; run by hand (no fence in the environment) nothing changes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from worker import fence


def test_a_stale_fence_stops_the_ranks_and_a_fresh_one_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.training.fencing import FenceCallback, Fenced

    path = tmp_path / "logs" / ".fence-attempt-1"
    fence.touch(path)
    monkeypatch.setenv(fence.FILE_ENV, str(path))
    monkeypatch.setenv(fence.SECONDS_ENV, "4.5")
    callback = FenceCallback()
    args, state, control = SimpleNamespace(device="cpu"), SimpleNamespace(global_step=7), object()
    callback.on_step_end(args, state, control)  # fresh: training goes on
    old = time.time() - 5
    os.utime(path, (old, old))
    with pytest.raises(Fenced, match="fenced at step 7: no word from the worker for more than 4 s"):
        callback.on_step_end(args, state, control)
    fence.touch(path)
    callback.on_step_end(args, state, control)


def test_without_a_fence_nothing_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.training.fencing import FenceCallback

    monkeypatch.delenv(fence.FILE_ENV, raising=False)
    FenceCallback().on_step_end(SimpleNamespace(device="cpu"), SimpleNamespace(global_step=1), None)


def test_the_fence_is_kept_while_the_worker_waits(tmp_path: Path) -> None:
    path = tmp_path / ".fence"
    fence.touch(path)
    old = time.time() - 100
    os.utime(path, (old, old))
    with fence.kept(path, every=0.05):
        time.sleep(0.3)
    silent = fence.silence(path)
    assert silent is not None and silent < 5
    assert fence.silence(tmp_path / "missing") is None
