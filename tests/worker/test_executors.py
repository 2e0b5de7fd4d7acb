"""The executor interface: the local implementation on a real process group, and the choice of
the attempt class by ``CPT_EXECUTOR``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from cpt_contract.settings import Settings
from worker.attempt.executors import Execution, LocalProcess, attempt_class
from worker.attempt.runner import RunAttempt
from worker.attempt.slurm.attempt import SlurmAttempt, SlurmJob


def test_local_process_start_poll_cancel_exit(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    proc: Execution = LocalProcess.start(argv, log, dict(os.environ), cwd=tmp_path)
    assert proc.poll().phase == "running" and proc.exit_status() is None
    deadline = time.monotonic() + 20
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.cancel(grace=5)
    assert proc.poll().phase == "done"
    assert proc.exit_status() == -15  # SIGTERM reached the group
    assert proc.log_path == log and "up" in log.read_text()


def test_finished_local_process_reports_its_exit_code(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    proc = LocalProcess.start(argv, tmp_path / "x.log", dict(os.environ), cwd=tmp_path)
    deadline = time.monotonic() + 20
    while proc.poll().phase != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.exit_status() == 3


def test_executor_chosen_by_settings() -> None:
    assert attempt_class(Settings(executor="local")) is RunAttempt
    assert attempt_class(Settings(executor="slurm")) is SlurmAttempt
    job: Execution = SlurmJob("12", Path("/tmp/x.log"))  # the same interface
    assert job.ident == "12" and job.exit_status() is None
