"""At 390x844 (a phone): no horizontal page overflow on the runs list and a run page, runs shown as
cards, the nav folded behind Menu with Log out reachable, charts as wide as the screen at most.
Real API, worker and a real training run, in Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH = 390
OVERFLOW = "() => document.documentElement.scrollWidth"


def _right(locator: Any) -> float:
    box = locator.bounding_box()
    assert box is not None, "element not rendered"
    return float(box["x"] + box["width"])


def test_phone_width_runs_list_and_run_page(ui: UI, panel: Any) -> None:
    config = {
        "data": {"max_eval_samples": 4},
        "training": {"max_steps": 6, "logging_steps": 1, "eval_steps": 3, "save_steps": 3},
    }
    with panel.client() as c:
        r = c.post(
            "/api/runs",
            json={
                "name": "a phone-sized look at a long run name",
                "preset": "tiny-demo",
                "config": config,
            },
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        wait_until(
            lambda: c.get(f"/api/runs/{rid}").json()["status"] in ("succeeded", "failed"),
            300,
            interval=1,
            what="the run to finish",
        )
        assert c.get(f"/api/runs/{rid}").json()["status"] == "succeeded"

    page = ui.page
    page.set_viewport_size({"width": WIDTH, "height": 844})
    ui.goto("/runs")
    row = page.locator(f"tr[data-run-id='{rid}']")
    row.wait_for()
    assert page.evaluate(OVERFLOW) <= WIDTH
    # A card: progress, loss and perplexity are on screen, not scrolled off to the right.
    assert row.evaluate("(el) => getComputedStyle(el).display") == "grid"
    for column in ("progress", "loss", "ppl"):
        cell = row.locator(f"td[data-column='{column}']")
        assert cell.is_visible() and _right(cell) <= WIDTH, column
    # The nav folds behind Menu; Log out is reachable and on screen.
    logout = page.get_by_role("button", name="Log out")
    assert not logout.is_visible()
    page.get_by_role("button", name="Menu").click()
    assert logout.is_visible() and _right(logout) <= WIDTH
    assert page.evaluate(OVERFLOW) <= WIDTH
    screenshot(page, "runs-phone")
    page.get_by_role("link", name="Workers", exact=True).click()
    wait_until(lambda: not logout.is_visible(), 5, what="the menu to close after navigating")

    ui.goto(f"/runs/{rid}")
    loss = page.get_by_test_id("chart-loss")
    wait_until(lambda: int(loss.get_attribute("data-points") or 0) >= 6, 20, what="the loss chart")
    page.get_by_test_id("checkpoints").wait_for()
    page.wait_for_timeout(300)  # the charts' ResizeObserver settles
    assert page.evaluate(OVERFLOW) <= WIDTH
    for chart in page.locator(".charts .chart").all():
        if chart.is_visible():
            assert _right(chart) <= WIDTH
            assert _right(chart.locator("canvas").first) <= WIDTH
    for button in page.get_by_test_id("checkpoints").locator("a.btn, button.btn").all():
        assert _right(button) <= WIDTH, button.inner_text()
    screenshot(page, "run-phone")
