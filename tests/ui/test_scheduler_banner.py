"""In Chromium: a run held by a Slurm worker shows where its job is (the worker's reason, e.g.
"Slurm job N pending: ..."), judged by the holding worker's executor as its heartbeat reports it;
a run held by a local worker shows no such banner, whatever its reason reads ("claimed by ...").

The workers are pretend at the protocol's edge (a heartbeat, a claim and status reports through
the real API): no Slurm cluster is needed to say which executor a worker has.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import claimed_run, worker_client
from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser]
QUEUE = "ui-scheduler-nobody"


def _beat(panel: Any, name: str, executor: str) -> None:
    with worker_client(panel) as w:
        r = w.post(
            "/api/internal/workers/heartbeat",
            json={"name": name, "queue": QUEUE, "executor": executor, "cpu_only": True},
        )
        assert r.status_code == 200, r.text


def _report(panel: Any, run: dict[str, Any], reason: str) -> None:
    with worker_client(panel) as w:
        r = w.post(
            f"/api/internal/runs/{run['id']}/status",
            json={"attempt": 1, "status": "running", "reason": reason},
            headers={LEASE_HEADER: run["lease"]},
        )
        assert r.status_code == 200, r.text


def test_a_slurm_workers_run_shows_its_job_and_a_local_one_does_not(ui: UI, panel: Any) -> None:
    _beat(panel, "ui-slurm-login", "slurm")
    _beat(panel, "ui-local-box", "local")
    slurm = claimed_run(panel, worker="ui-slurm-login", queue=QUEUE, name="ui slurm banner")
    local = claimed_run(panel, worker="ui-local-box", queue=QUEUE, name="ui local banner")
    try:
        _report(panel, slurm, "Slurm job 4242 pending: waiting for resources (Resources)")
        _report(panel, local, "claimed by ui-local-box")

        page = ui.goto(f"/runs/{slurm['id']}")
        banner = page.get_by_test_id("scheduler-banner")
        banner.wait_for(timeout=30_000)
        assert "Slurm job 4242 pending" in banner.inner_text()
        # The job starts: the banner follows the worker's next reason.
        _report(panel, slurm, "Slurm job 4242 running on node07")
        wait_until(lambda: "running on node07" in banner.inner_text(), 15, what="the new reason")
        screenshot(page, "run-slurm-banner", docs=False)

        page = ui.goto(f"/runs/{local['id']}")
        page.get_by_text("ui local banner").first.wait_for(timeout=30_000)
        # The banner would come with the workers' read: give that time, then it must still be absent.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert page.get_by_test_id("scheduler-banner").count() == 0, (
                "a local run shows a Slurm banner"
            )
            page.wait_for_timeout(250)
    finally:
        with panel.client() as c:
            for run in (slurm, local):
                c.post(f"/api/runs/{run['id']}/cancel")
