"""The executor protocol: the one chosen by ``CPT_EXECUTOR``, composed by the attempt, and the
local one's promise that nothing of an attempt outlives it (a real process tree)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from cpt_contract.run_paths import RunPaths
from cpt_contract.settings import Settings
from worker.attempt import launcher
from worker.attempt.api_client import WorkerApi
from worker.attempt.context import AttemptContext
from worker.attempt.executors import Executor, executor_for
from worker.attempt.local import LocalExecutor
from worker.attempt.proctree import ProcessTree
from worker.attempt.registry import Registry
from worker.attempt.runner import RunAttempt
from worker.attempt.slurm.executor import SlurmExecutor


def _ctx(tmp_path: Path) -> AttemptContext:
    settings = Settings(data_dir=tmp_path / "data", build_demo=False)
    return AttemptContext(
        settings=settings,
        api=WorkerApi("http://127.0.0.1:9", "unused"),  # never called here
        run_id="r-1",
        attempt=1,
        registry=Registry.for_settings(settings),
        paths=RunPaths.of(settings.runs_dir, "r-1"),
    )


def test_executor_chosen_by_settings_and_composed_by_the_attempt(tmp_path: Path) -> None:
    local = executor_for(Settings(executor="local"))
    slurm = executor_for(Settings(executor="slurm"))
    assert isinstance(local, LocalExecutor) and isinstance(slurm, SlurmExecutor)
    assert isinstance(local, Executor) and isinstance(slurm, Executor)  # one protocol
    settings = Settings(data_dir=tmp_path / "data", build_demo=False)
    attempt = RunAttempt(settings, WorkerApi("http://127.0.0.1:9", "x"), "r-1", 2, slurm)
    assert attempt.executor is slurm and attempt.ctx.attempt == 2
    assert attempt.ctx.log_path == RunPaths.of(settings.runs_dir, "r-1").log(2)


def test_the_local_executor_leaves_no_process_of_the_attempt(tmp_path: Path) -> None:
    """A process and its child in another session: ``release`` ends both."""
    ctx = _ctx(tmp_path)
    code = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True); print('up', flush=True); time.sleep(60)"
    )
    log = tmp_path / "attempt-1.log"
    proc = launcher.start([sys.executable, "-c", code], log, {}, cwd=tmp_path)
    executor = LocalExecutor()
    executor.proc, executor.tree = proc, ProcessTree(proc.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(executor.tree.alive()) < 2:
        executor.tree.refresh()
        time.sleep(0.05)
    pids = [p.pid for p in executor.tree.alive()]
    assert len(pids) == 2, pids
    executor.release(ctx)
    proc.wait(timeout=10)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
