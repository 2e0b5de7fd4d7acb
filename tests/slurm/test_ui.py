"""In Chromium: the Workers page shows the Slurm worker's partitions with idle/allocated nodes
(its sinfo report), and a run page shows Slurm's reason while the job pends (real API, real
worker, real Slurm)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.slurm.conftest import config_with, wait_job_state
from tests.support.e2e import submit, tiny_config, wait_final
from tests.support.panel import Panel
from tests.support.ui import UI, screenshot, wait_until

pytestmark = pytest.mark.browser


def test_workers_page_shows_partitions(
    slurm_panel: Panel, built_frontend: Path, browser: Any
) -> None:
    ui = UI(browser, slurm_panel.url, slurm_panel.token)
    blocker = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--nodes=1",
            "--exclusive",
            "--partition=debug",
            "--job-name=blocker",
            "--output=/dev/null",
            "--wrap",
            "sleep 120",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        wait_job_state(blocker, {"RUNNING"}, 30)
        page = ui.goto("/workers")
        row = page.locator("tr[data-partition='debug']")
        row.wait_for()
        assert "(default)" in row.inner_text()
        # Idle / allocated / other / total, refreshed from the heartbeat's sinfo.
        wait_until(
            lambda: [c.inner_text() for c in row.locator("td").all()][2:6] == ["1", "1", "0", "2"],
            30,
            what="one of two nodes allocated",
        )
        short = page.locator("tr[data-partition='short']")
        assert short.locator("td").all()[6].inner_text() == "00:01"
        assert "Slurm executor" in page.locator(".worker").first.inner_text()
        screenshot(page, "workers-slurm", docs=False)
    finally:
        subprocess.run(["scancel", blocker], check=False)
        ui.close()
    assert not ui.console_errors, ui.console_errors


def test_run_page_shows_why_the_job_pends(
    slurm_panel: Panel, built_frontend: Path, browser: Any, tiny_assets: dict[str, Any]
) -> None:
    ui = UI(browser, slurm_panel.url, slurm_panel.token)
    blocker = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--nodes=2",
            "--exclusive",
            "--job-name=blocker",
            "--output=/dev/null",
            "--wrap",
            "sleep 120",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    run: dict[str, Any] = {}
    try:
        wait_job_state(blocker, {"RUNNING"}, 30)
        run = submit(slurm_panel, config_with(tiny_config(tiny_assets)), "slurm pending ui")
        page = ui.goto(f"/runs/{run['id']}")
        banner = page.get_by_test_id("scheduler-banner")
        wait_until(
            lambda: "pending" in (banner.inner_text() if banner.count() else ""),
            60,
            what="the pending banner",
        )
        assert "Resources" in banner.inner_text() or "Priority" in banner.inner_text()
        assert page.locator(".page-head .badge").get_attribute("data-status") == "starting"
        screenshot(page, "run-slurm-pending", docs=False)
    finally:
        if run:
            with slurm_panel.client() as c:
                c.post(f"/api/runs/{run['id']}/cancel")
        subprocess.run(["scancel", blocker], check=False)
        ui.close()
    assert wait_final(slurm_panel, run["id"], timeout=60)["status"] == "cancelled"
    assert not ui.console_errors, ui.console_errors
