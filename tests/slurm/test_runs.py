"""Runs on the real local Slurm: sbatch/squeue/scontrol/scancel, no fakes.

The panel's worker is a "login node" with ``CPT_EXECUTOR=slurm``; the jobs run on the two
slurmd of this host (CPU nodes, gloo). Latencies measured here are printed (``-s``).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.slurm.conftest import config_with, slurm_job, submitted_jobs, the_job, wait_job_state
from tests.support.e2e import (
    api_events,
    api_log,
    run_dir,
    submit,
    tiny_config,
    wait_final,
    wait_for,
)
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def test_tiny_demo_succeeds_on_slurm(slurm_panel: Panel, tiny_assets: dict[str, Any]) -> None:
    """submit → PENDING/RUNNING → COMPLETED → succeeded, with metrics and checkpoints."""
    t_submit = time.monotonic()
    run = submit(slurm_panel, config_with(tiny_config(tiny_assets)), "slurm happy path")
    running = wait_for(slurm_panel, run["id"], lambda r: r["status"] == "running", 120, "running")
    t_running = time.monotonic()
    assert "Slurm job" in (running["status_reason"] or "")
    job = the_job(slurm_panel, run["id"])
    log = api_log(slurm_panel, run["id"], 1)
    _, t_completed = wait_job_state(job, {"COMPLETED", "FAILED"}, 180)
    final = wait_final(slurm_panel, run["id"])
    t_final = time.monotonic()
    assert final["status"] == "succeeded", final
    assert slurm_job(job)["JobState"] == "COMPLETED"
    assert final["step"] == 8 and final["loss"] is not None
    events = api_events(slurm_panel, run["id"])
    assert [e["step"] for e in events if e["kind"] == "log"][-1] == 8
    with slurm_panel.client() as c:
        checkpoints = c.get(f"/api/runs/{run['id']}/checkpoints").json()
    assert {c["name"] for c in checkpoints} >= {"checkpoint-4", "checkpoint-8"}
    out = run_dir(slurm_panel, run["id"]) / "output"
    assert (out / "checkpoint-8" / "cpt_run.json").is_file()
    log = api_log(slurm_panel, run["id"], 1)
    assert "$ sbatch " in log and "--nodes=1" in log and "rendezvous at 127.0.0.1:" in log
    print(
        f"\nslurm latency: submit→running {t_running - t_submit:.2f}s (API submit to the run "
        f"showing running), COMPLETED→succeeded {t_final - t_completed:.2f}s"
    )


def test_two_processes_in_one_allocation(slurm_panel: Panel, tiny_assets: dict[str, Any]) -> None:
    config = config_with(tiny_config(tiny_assets), nproc_per_node=2)
    run = submit(slurm_panel, config, "slurm two processes")
    final = wait_final(slurm_panel, run["id"], timeout=240)
    assert final["status"] == "succeeded", final
    start = next(e for e in api_events(slurm_panel, run["id"]) if e["kind"] == "start")
    assert start["data"]["world_size"] == 2
    log = api_log(slurm_panel, run["id"], 1)
    assert "--cpus-per-task=2" in log and "--nproc_per_node 2" in log


def test_two_nodes(slurm_panel: Panel, tiny_assets: dict[str, Any]) -> None:
    """nnodes 2 for real: two slurmd on this host, c10d rendezvous on the first node."""
    config = config_with(tiny_config(tiny_assets), nnodes=2, nproc_per_node=1)
    run = submit(slurm_panel, config, "slurm two nodes")
    final = wait_final(slurm_panel, run["id"], timeout=240)
    assert final["status"] == "succeeded", final
    start = next(e for e in api_events(slurm_panel, run["id"]) if e["kind"] == "start")
    assert start["data"]["world_size"] == 2
    log = api_log(slurm_panel, run["id"], 1)
    assert "(2 node(s))" in log and "cpt-n[1-2]" in log


def test_cancel_while_pending(slurm_panel: Panel, tiny_assets: dict[str, Any]) -> None:
    """Both nodes held by another job: the run shows Slurm's reason, and cancel scancels it."""
    blocker = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--nodes=2",
            "--exclusive",
            "--job-name=blocker",
            "--output=/dev/null",
            "--wrap",
            "sleep 300",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        wait_job_state(blocker, {"RUNNING"}, 30)
        run = submit(slurm_panel, config_with(tiny_config(tiny_assets)), "slurm pending")
        pending = wait_for(
            slurm_panel,
            run["id"],
            lambda r: "pending" in (r["status_reason"] or ""),
            60,
            "pending in Slurm",
        )
        assert pending["status"] == "starting"
        assert "Resources" in pending["status_reason"] or "Priority" in pending["status_reason"]
        job = the_job(slurm_panel, run["id"])
        assert slurm_job(job)["JobState"] == "PENDING"
        with slurm_panel.client() as c:
            assert c.post(f"/api/runs/{run['id']}/cancel").status_code == 200
        final = wait_final(slurm_panel, run["id"], timeout=60)
        assert final["status"] == "cancelled", final
        assert slurm_job(job)["JobState"] == "CANCELLED"
    finally:
        subprocess.run(["scancel", blocker], check=False)


def test_cancel_while_running(slurm_panel: Panel, tiny_assets: dict[str, Any]) -> None:
    config = config_with(tiny_config(tiny_assets, max_steps=2000, save_steps=1000))
    run = submit(slurm_panel, config, "slurm cancel running")
    wait_for(slurm_panel, run["id"], lambda r: (r["step"] or 0) >= 2, 120, "training")
    job = the_job(slurm_panel, run["id"])
    t0 = time.monotonic()
    with slurm_panel.client() as c:
        assert c.post(f"/api/runs/{run['id']}/cancel").status_code == 200
    final = wait_final(slurm_panel, run["id"], timeout=90)
    assert final["status"] == "cancelled", final
    wait_job_state(job, {"CANCELLED"}, 30)
    print(f"\nslurm cancel while running: cancelled after {time.monotonic() - t0:.2f}s")


def test_time_limit_checkpoints_and_resumes(
    slurm_panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    """A 1-minute limit: TERM before the limit → checkpoint → resubmitted, resumed → succeeded.

    save_steps is larger than max_steps, so every checkpoint is one saved on TERM."""
    steps = 1000
    # Bigger batches than the demo's so that training outlasts the first TERM (20-50 s into a 1-minute job).
    config = config_with(
        tiny_config(
            tiny_assets,
            max_steps=steps,
            save_steps=100_000,
            logging_steps=20,
            per_device_train_batch_size=32,
        ),
        partition="short",
        time_limit="1",
    )
    config["data"]["block_size"] = 128
    run = submit(slurm_panel, config, "slurm time limit")
    final = wait_final(slurm_panel, run["id"], timeout=540)
    log = api_log(slurm_panel, run["id"], 1)
    assert final["status"] == "succeeded", (final, log[-3000:])
    jobs = submitted_jobs(log)
    assert len(jobs) >= 2, [line for line in log.splitlines() if "cpt-panel" in line]
    assert "SIGTERM from Slurm" in log and "resubmitting to resume" in log
    assert "reached its time limit" in log
    events = api_events(slurm_panel, run["id"])
    saved = [e for e in events if e["kind"] == "checkpoint"]
    assert saved and all(e["step"] < steps for e in saved[:-1] or saved)
    starts = [e for e in events if e["kind"] == "start"]
    assert len(starts) >= 2 and starts[1]["data"]["resumed_from"], starts
    assert final["step"] == steps
    # The run resumed where the TERM checkpoint left it, not from scratch.
    first_resume = Path(starts[1]["data"]["resumed_from"]).name
    assert first_resume == saved[0]["data"]["name"]
