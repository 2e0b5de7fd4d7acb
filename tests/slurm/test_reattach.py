"""A Slurm worker killed (kill -9) mid-job and restarted under the same name takes its job back:
the same Slurm job finishes the run, in one attempt, with every step's metrics once."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests.slurm.conftest import (
    WORKER_ENV,
    config_with,
    slurm_job,
    submitted_jobs,
    the_job,
)
from tests.support.e2e import (
    api_events,
    api_log,
    file_events,
    submit,
    tiny_config,
    wait_final,
    wait_for,
)
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def test_a_restarted_worker_adopts_its_running_job(
    slurm_panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    steps = 24
    config = config_with(tiny_config(tiny_assets, max_steps=steps, save_steps=8))
    run = submit(slurm_panel, config, "kill -9 the Slurm worker mid-job")
    rid = run["id"]
    wait_for(slurm_panel, rid, lambda r: (r["step"] or 0) >= 3, 240, "training on Slurm")
    job = the_job(slurm_panel, rid)

    worker = slurm_panel.procs[-1]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    killed = time.monotonic()
    assert slurm_job(job)["JobState"] in ("RUNNING", "COMPLETING"), "the job outlives its worker"

    slurm_panel.start_worker(concurrency=1, extra_env=WORKER_ENV)
    deadline = time.monotonic() + 120
    while "adopted Slurm job" not in api_log(slurm_panel, rid, 1):
        assert time.monotonic() < deadline, "the restarted worker never adopted the job"
        time.sleep(0.2)
    adopted = time.monotonic() - killed

    final = wait_final(slurm_panel, rid, timeout=300)
    assert final["status"] == "succeeded", final
    assert final["attempt"] == 1, final["attempt_log"]
    log = api_log(slurm_panel, rid, 1)
    assert submitted_jobs(log) == [job], log[-3000:]  # one job: never cancelled, never resubmitted
    assert f"worker restarted: adopted Slurm job {job} (attempt 1)" in log
    assert slurm_job(job)["JobState"] == "COMPLETED"

    # Every event the job wrote is stored once, in order, under its one attempt.
    on_disk = file_events(slurm_panel, rid)
    stored = api_events(slurm_panel, rid)
    assert [(e["seq"], e["attempt"]) for e in stored] == [(e["seq"], 1) for e in on_disk]
    assert [e["data"] for e in stored] == on_disk
    with slurm_panel.client() as c:
        r = c.get(f"/api/runs/{rid}/metrics", params={"keys": "loss", "max_points": 100000})
    assert r.json()["series"]["loss"]["step"] == list(range(1, steps + 1))  # continuous
    # The attempt's entry says the step it really reached.
    assert final["attempt_log"][-1]["step"] == steps, final["attempt_log"]
    print(f"\nslurm re-attach: job {job} adopted {adopted:.1f}s after the kill -9")
