"""A panel whose worker hands runs to the real Slurm of this machine (``scripts/slurm-local.sh``:
slurmctld and two slurmd, nodes cpt-n1 and cpt-n2, partitions ``debug`` and ``short``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.panel import Panel, start_panel

#: What the Slurm worker of the tests runs with (CPU nodes, quick polling, a short TERM grace).
WORKER_ENV = {
    "CPT_EXECUTOR": "slurm",
    "CPT_SLURM_GPUS": "false",
    "CPT_SLURM_POLL_SECONDS": "0.2",
    "CPT_SLURM_SIGNAL_GRACE_SECONDS": "10",
    "CPT_SLURM_MAX_REQUEUES": "20",
    "OMP_NUM_THREADS": "1",
}


def slurm_up() -> None:
    try:
        out = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        pytest.fail("Slurm is not installed: run scripts/slurm-local.sh (make test does)")
    if "UP" not in out.stdout:
        pytest.fail(f"slurmctld is not up ({out.stdout or out.stderr}): run scripts/slurm-local.sh")


@pytest.fixture(scope="session")
def slurm_panel(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, tiny_assets: dict[str, Path]
) -> Iterator[Panel]:
    slurm_up()
    data_dir = tmp_path_factory.mktemp("slurm-panel")
    p = start_panel(data_dir, broker_url=redis_url, allowed_roots=[tiny_assets["root"]])
    try:
        p.start_worker(concurrency=1, extra_env=WORKER_ENV)
        yield p
    finally:
        p.stop()
        for job in jobs_of(p):  # nothing of ours stays in the queue
            subprocess.run(["scancel", job], check=False)


def jobs_of(panel: Panel) -> list[str]:
    """Slurm job ids the panel's runs submitted (from the run dirs' job scripts and logs)."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j"], capture_output=True, text=True, check=False
    ).stdout
    runs = {p.name for p in (panel.data_dir / "runs").glob("*")}
    return [
        i
        for i, _, name in (line.partition("|") for line in out.splitlines())
        if name.removeprefix("cpt-") in runs
    ]


def slurm_job(job_id: str) -> dict[str, str]:
    """``scontrol -o show job`` as a dict (only the space-free fields are reliable)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def submitted_jobs(log: str) -> list[str]:
    return [
        line.split("submitted Slurm job ")[1].split()[0]
        for line in log.splitlines()
        if "submitted Slurm job " in line
    ]


def the_job(panel: Panel, run_id: str, timeout: float = 15.0) -> str:
    """The one Slurm job the run's attempt-1 log names; the worker ships log bytes in batches
    (every 0.5 s), so the line may trail the status that said the job exists."""
    from tests.support.e2e import api_log

    deadline = time.monotonic() + timeout
    while True:
        jobs = submitted_jobs(api_log(panel, run_id, 1))
        if jobs or time.monotonic() > deadline:
            (job,) = jobs
            return job
        time.sleep(0.2)


def wait_job_state(job_id: str, states: set[str], timeout: float) -> tuple[str, float]:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = slurm_job(job_id).get("JobState", "")
        if state in states:
            return state, time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"Slurm job {job_id} never reached {states} (last {state})")


def config_with(base: dict[str, Any], **launch: Any) -> dict[str, Any]:
    return {**base, "launch": {"deepspeed": "none", **launch}}
