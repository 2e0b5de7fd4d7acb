"""What Slurm does to a job that the job itself did not choose, for real on the local Slurm:
a node of the allocation failing (NODE_FAIL) and preemption by a higher-priority partition
(PREEMPTED: training saves on TERM and the run is resubmitted and resumed)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.slurm.conftest import config_with, slurm_job, the_job, wait_job_state
from tests.support.e2e import api_events, api_log, submit, tiny_config, wait_final, wait_for
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def _scontrol(*args: str, check: bool = True) -> None:
    subprocess.run(["scontrol", *args], check=check, capture_output=True, text=True)


def test_node_failure_fails_the_run_with_the_state(
    slurm_panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    config = config_with(
        tiny_config(tiny_assets, max_steps=5000, save_steps=100_000), nnodes=2, nproc_per_node=1
    )
    run = submit(slurm_panel, config, "slurm node failure")
    wait_for(slurm_panel, run["id"], lambda r: (r["step"] or 0) >= 2, 120, "training")
    job = the_job(slurm_panel, run["id"])
    try:
        _scontrol("update", "nodename=cpt-n2", "state=down", "reason=cpt-panel test")
        final = wait_final(slurm_panel, run["id"], timeout=120)
    finally:
        # ReturnToService=2 may already have brought it back (its slurmd is alive).
        _scontrol("update", "nodename=cpt-n2", "state=resume", check=False)
    assert slurm_job(job)["JobState"] == "NODE_FAIL"
    assert final["status"] == "failed", final
    assert "NODE_FAIL" in final["status_reason"] and "resume" in final["status_reason"]


def test_preempted_run_saves_and_resumes(slurm_panel: Panel, tiny_assets: dict[str, Any]) -> None:
    """A job in partition ``urgent`` (PriorityTier 10) preempts ours in ``debug``."""
    config = config_with(
        tiny_config(tiny_assets, max_steps=600, save_steps=100_000, logging_steps=20),
        nnodes=2,
        nproc_per_node=1,
    )
    run = submit(slurm_panel, config, "slurm preempted")
    wait_for(slurm_panel, run["id"], lambda r: (r["step"] or 0) >= 20, 120, "training")
    job = the_job(slurm_panel, run["id"])
    urgent = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--partition=urgent",
            "--nodes=2",
            "--exclusive",
            "--output=/dev/null",
            "--wrap",
            "sleep 5",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        state, _ = wait_job_state(job, {"PREEMPTED", "CANCELLED", "FAILED", "COMPLETED"}, 90)
        # Training saves on TERM and exits before the grace ends: Slurm then says FAILED (exit
        # 143), with PreemptTime set; otherwise PREEMPTED.
        assert state == "PREEMPTED" or slurm_job(job)["PreemptTime"] != "None", state
        final = wait_final(slurm_panel, run["id"], timeout=300)
    finally:
        subprocess.run(["scancel", urgent], check=False)
    log = api_log(slurm_panel, run["id"], 1)
    assert final["status"] == "succeeded", (final, log[-2000:])
    assert f"Slurm job {job} was preempted" in log and "resubmitting to resume" in log
    events = api_events(slurm_panel, run["id"])
    starts = [e for e in events if e["kind"] == "start"]
    assert len(starts) == 2 and starts[1]["data"]["resumed_from"], starts
