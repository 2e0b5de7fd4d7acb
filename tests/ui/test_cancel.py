"""Cancel from the UI: a queued run is cancelled at once, a running one goes through cancelling."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ui import STATUS_RECORDER, UI, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _create(panel: Any, name: str, max_steps: int) -> str:
    with panel.client() as c:
        r = c.post(
            "/api/runs",
            json={
                "name": name,
                "preset": "tiny-demo",
                "config": {
                    "training": {"max_steps": max_steps, "save_steps": 1000, "eval_steps": None}
                },
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _status(panel: Any, run_id: str) -> str:
    with panel.client() as c:
        return str(c.get(f"/api/runs/{run_id}").json()["status"])


def test_cancel_running_and_queued_runs_from_the_ui(ui: UI, panel: Any) -> None:
    page = ui.page
    long_run = _create(panel, "ui long run", 100_000)
    # The worker has concurrency 1, so this one waits in the queue behind the long run.
    waiting = _create(panel, "ui waiting run", 10)

    page.add_init_script(STATUS_RECORDER)
    ui.goto(f"/runs/{long_run}")
    page.locator(".page-head .badge[data-status=running]").wait_for(timeout=90_000)
    assert _status(panel, waiting) == "queued"

    # Cancel the queued run from the runs list: the row turns cancelled live, without a reload.
    ui.goto("/runs")
    row = page.locator(f"tr[data-run-id='{waiting}']")
    row.get_by_role("button", name="Cancel").click()
    dialog = page.get_by_role("dialog")
    assert "Cancel ui waiting run?" in dialog.inner_text()
    dialog.get_by_test_id("confirm").click()
    row.locator(".badge[data-status=cancelled]").wait_for()
    assert _status(panel, waiting) == "cancelled"

    # Cancel the running run from its page, with a confirmation that can be backed out of.
    ui.goto(f"/runs/{long_run}")
    page.locator(".page-head .badge[data-status=running]").wait_for()
    page.locator(".page-head").get_by_role("button", name="Cancel").click()
    page.get_by_role("dialog").get_by_role("button", name="Back").click()
    assert page.get_by_role("dialog").count() == 0
    assert _status(panel, long_run) == "running"

    page.locator(".page-head").get_by_role("button", name="Cancel").click()
    page.get_by_role("dialog").get_by_test_id("confirm").click()
    page.locator(".page-head .badge[data-status=cancelled]").wait_for(timeout=60_000)
    seen = page.evaluate("window.__statuses")
    # "cancelling" is shown only because the API answered it; "cancelled" only when the worker confirmed.
    assert seen[-2:] == ["cancelling", "cancelled"] or seen[-1] == "cancelled", seen
    assert "cancelling" in seen, seen
    assert _status(panel, long_run) == "cancelled"
    screenshot(page, "run-cancelled")

    # Nothing was saved before the cancel, so there is nothing to resume from: neither the run
    # page nor the runs list offers it (the list knows: has_checkpoint), and the server refuses.
    assert page.locator(".page-head").get_by_role("button", name="Resume").count() == 0
    ui.goto("/runs")
    row = page.locator(f"tr[data-run-id='{long_run}']")
    row.get_by_role("button", name="Clone").wait_for()
    assert row.get_attribute("data-status") == "cancelled"
    assert row.get_by_role("button", name="Resume").count() == 0
    with panel.client() as c:
        assert c.get(f"/api/runs/{long_run}").json()["has_checkpoint"] is False
        refused = c.post(f"/api/runs/{long_run}/resume", json={"checkpoint": "last"})
        assert refused.status_code == 409 and "no checkpoint" in refused.text, refused.text
    assert _status(panel, long_run) == "cancelled"
