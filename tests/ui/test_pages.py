"""Runs list (paging, filtering, live updates) and the workers page."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.panel import ROOT, kill_tree
from tests.support.ui import UI, link_demo, screenshot, wait_until

pytestmark = pytest.mark.browser

DASH = "\u2013"  # the pager writes ranges with an en dash


def test_runs_list_pages_filters_and_updates_live(
    browser: Any, api_only: Any, tiny_assets: dict[str, Path]
) -> None:
    """API without a worker: runs stay queued, so the list's content is exactly what we made."""
    link_demo(api_only.data_dir, tiny_assets)
    n = 120
    with api_only.client() as c:
        ids = []
        for i in range(n):
            r = c.post("/api/runs", json={"name": f"bulk {i:03d}", "preset": "tiny-demo"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])

    ui = UI(browser, api_only.url, api_only.token)
    page = ui.page
    try:
        ui.goto("/runs")
        rows = page.locator("[data-testid=runs-table] tbody tr")
        wait_until(lambda: rows.count() == 50, 10, what="one page of 50 rows")
        assert page.get_by_test_id("pager-text").inner_text() == f"1{DASH}50 of 120"
        # Newest first.
        assert rows.first.get_attribute("data-run-id") == ids[-1]
        page.get_by_role("button", name="Next").click()
        wait_until(
            lambda: page.get_by_test_id("pager-text").inner_text() == f"51{DASH}100 of 120",
            10,
            what="page 2",
        )
        page.get_by_role("button", name="Previous").click()
        wait_until(
            lambda: rows.first.get_attribute("data-run-id") == ids[-1], 10, what="back to page 1"
        )

        # A change made elsewhere (here: the API directly) reaches the row over SSE, no reload.
        newest = ids[-1]
        with api_only.client() as c:
            assert c.post(f"/api/runs/{newest}/cancel").json()["status"] == "cancelled"
        page.locator(f"tr[data-run-id='{newest}'] .badge[data-status=cancelled]").wait_for(
            timeout=10_000
        )

        # Filtering by status is done by the server.
        page.get_by_role("button", name="cancelled", exact=True).click()
        wait_until(lambda: rows.count() == 1, 10, what="only the cancelled run")
        assert page.get_by_test_id("pager-text").inner_text() == f"1{DASH}1 of 1"
        # The filter is in the URL: a reload (or a shared link) keeps it.
        assert page.url.endswith("#/runs?status=cancelled")
        page.reload()
        wait_until(lambda: rows.count() == 1, 10, what="the filter after a reload")
        assert (
            page.get_by_role("button", name="cancelled", exact=True).get_attribute("aria-pressed")
            == "true"
        )
        page.get_by_role("button", name="running", exact=True).click()  # cancelled OR running
        wait_until(lambda: rows.count() == 1, 10, what="still one run")
        page.get_by_role("button", name="all", exact=True).click()
        wait_until(
            lambda: page.get_by_test_id("pager-text").inner_text() == f"1{DASH}50 of 120",
            10,
            what="all again",
        )

        # A run created while the page is open appears at the top by itself.
        with api_only.client() as c:
            new_id = c.post("/api/runs", json={"name": "fresh one", "preset": "tiny-demo"}).json()[
                "id"
            ]
        wait_until(
            lambda: rows.first.get_attribute("data-run-id") == new_id, 10, what="new run at the top"
        )
        screenshot(page, "runs-paged", docs=False)
    finally:
        ui.close()
    assert not ui.console_errors, ui.console_errors


def _restart_api(panel: Any) -> None:
    """Stop the panel's API and start it again on the same port and data (a deploy, a crash)."""
    kill_tree(panel.procs[0])
    time.sleep(8)  # long enough for the page's reconnect backoff to grow past a few seconds
    log = open(panel.data_dir / "api.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpt_cli.main", "serve"],
        cwd=ROOT,
        env=panel.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    panel.procs[0] = proc
    wait_until(lambda: _healthy(panel.url), 60, what="the API back up")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_runs_list_reconnects_and_catches_up_after_an_api_restart(
    browser: Any, api_only: Any, tiny_assets: dict[str, Path]
) -> None:
    """A change made while the page's stream is down shows up once it reconnects (re-fetch)."""
    link_demo(api_only.data_dir, tiny_assets)
    with api_only.client() as c:
        first = c.post("/api/runs", json={"name": "before restart", "preset": "tiny-demo"}).json()
    ui = UI(browser, api_only.url, api_only.token)
    page = ui.page
    try:
        ui.goto("/runs")
        page.locator(f"tr[data-run-id='{first['id']}']").wait_for()
        live = page.get_by_test_id("live")
        wait_until(lambda: live.inner_text() == "live", 10, what="the stream to open")

        _restart_api(api_only)
        assert live.inner_text() == "reconnecting…"
        # Made while the page is still waiting out its backoff: no SSE event will carry it.
        with api_only.client() as c:
            made = c.post("/api/runs", json={"name": "during outage", "preset": "tiny-demo"}).json()
            c.post(f"/api/runs/{first['id']}/cancel")
        rows = page.locator("[data-testid=runs-table] tbody tr")
        wait_until(lambda: live.inner_text() == "live", 30, what="the stream to reconnect")
        wait_until(
            lambda: rows.first.get_attribute("data-run-id") == made["id"],
            10,
            what="re-fetched list",
        )
        row = page.locator(f"tr[data-run-id='{first['id']}']")
        wait_until(
            lambda: row.get_attribute("data-status") == "cancelled", 10, what="re-fetched row"
        )
    finally:
        ui.close()


def test_workers_page_shows_the_live_worker(ui: UI, panel: Any) -> None:
    with httpx.Client(base_url=panel.url, headers={"Authorization": f"Bearer {panel.token}"}) as c:
        workers = c.get("/api/workers").json()
    alive = [w for w in workers if w["alive"]]
    assert alive
    page = ui.page
    ui.goto("/workers")
    card = page.locator(f"[data-worker='{alive[0]['name']}']")
    card.wait_for()
    text = card.inner_text()
    assert "online" in text and alive[0]["queue"] in text
    if alive[0]["cpu_only"]:
        assert "CPU only" in text
    else:
        assert card.locator("table.gpus tbody tr").count() == len(alive[0]["gpus"])
    screenshot(page, "workers")
