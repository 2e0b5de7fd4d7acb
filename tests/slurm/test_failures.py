"""What Slurm does to a job that the job itself did not choose, for real on the local Slurm:
a node of the allocation failing (NODE_FAIL) and preemption by a higher-priority partition
(PREEMPTED: training saves on TERM and the run is resubmitted and resumed)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.slurm.conftest import config_with, slurm_job, submitted_jobs, the_job, wait_job_state
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


def test_jobs_terminated_before_their_first_step_are_not_resubmitted_forever(
    tmp_path: Path, redis_url: str, tiny_assets: dict[str, Any]
) -> None:
    """The overnight case: a time limit that sends TERM before the first step, every time.
    Before, the worker resubmitted 11 times over 339 s and then advised resuming from a
    checkpoint that did not exist; now the retry policy stops after CPT_FUTILE_ATTEMPTS jobs
    that trained nothing, and the reason says no checkpoint was saved."""
    from tests.slurm.conftest import WORKER_ENV, slurm_up
    from tests.support.panel import start_panel

    slurm_up()
    panel = start_panel(
        tmp_path / "data", broker_url=redis_url, allowed_roots=[tiny_assets["root"]]
    )
    try:
        panel.start_worker(concurrency=1, extra_env={**WORKER_ENV, "CPT_FUTILE_ATTEMPTS": "2"})
        # A step-0 evaluation longer than the 1-minute limit (tens of millions of characters,
        # scored before any training): every job is ended before its first step.
        big = tiny_assets["root"] / f"slow-heldout-{tmp_path.name}.txt"
        line = "All human beings are born free and equal in dignity and rights. " * 8 + "\n"
        big.write_text(line * 120_000)  # ~62 MB
        training = tiny_config(tiny_assets, max_steps=5)
        training["data"]["eval_sets"] = {"big": {"path": str(big), "max_characters": 60_000_000}}
        config = config_with(training, partition="short", time_limit="1")
        run = submit(panel, config, "TERM before the first step")
        final = wait_final(panel, run["id"], timeout=600)
        log = api_log(panel, run["id"], 1)
        jobs = submitted_jobs(log)
        assert final["status"] == "failed", final
        assert len(jobs) == 2, (jobs, log[-3000:])
        reason = final["status_reason"]
        assert (
            "not resubmitted: 2 tries in a row ended without training past its first step" in reason
        )
        assert (
            "no checkpoint was saved to resume from" in reason
            and "resume from checkpoint" not in reason
        )
        assert final["failure_kind"] == "slurm_time_limit", final
    finally:
        for job in submitted_jobs(api_log(panel, run["id"], 1)) if "run" in locals() else []:
            subprocess.run(["scancel", job], check=False)
        panel.stop()
        if "big" in locals():
            big.unlink(missing_ok=True)
