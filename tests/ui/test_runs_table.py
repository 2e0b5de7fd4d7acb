"""The runs table as users know it from experiment trackers: sortable columns, a column chooser
(config fields, last/best metrics) kept across reloads, tags and a note edited on the run page
and found by the list's search, and several runs picked for Compare. Real API, worker, Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _train(panel: Any, name: str, lr: float) -> str:
    config = {
        "data": {"max_eval_samples": 4},
        "training": {
            "max_steps": 4,
            "logging_steps": 1,
            "eval_steps": 4,
            "save_steps": 4,
            "learning_rate": lr,
        },
    }
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": config})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _column_texts(page: Any, column: str) -> list[str]:
    return [
        t.strip()
        for t in page.locator(
            f"[data-testid=runs-table] tbody td[data-column='{column}']"
        ).all_inner_texts()
    ]


def test_sort_choose_columns_tag_note_and_compare(ui: UI, panel: Any) -> None:
    slow, fast = _train(panel, "table slow lr", 1e-5), _train(panel, "table fast lr", 3e-3)
    with panel.client() as c:

        def done() -> bool:
            runs = [c.get(f"/api/runs/{i}").json() for i in (slow, fast)]
            assert not [r["status_reason"] for r in runs if r["status"] == "failed"]
            return all(r["status"] == "succeeded" for r in runs)

        wait_until(done, 300, interval=1, what="both runs to succeed")
        lr = {
            i: c.get(f"/api/runs/{i}").json()["config"]["training"]["learning_rate"]
            for i in (slow, fast)
        }
        best = {
            i: c.get(f"/api/runs/{i}").json()["metrics_summary"]["loss"]["best"]
            for i in (slow, fast)
        }

    page = ui.page
    ui.goto("/runs?q=table")
    rows = page.locator("[data-testid=runs-table] tbody tr")
    wait_until(lambda: rows.count() == 2, 15, what="the two runs")

    # The column chooser: a config field and a metric's best value, from the menu.
    page.get_by_test_id("column-chooser").locator("summary").click()
    page.get_by_label("Find a column").fill("learning_rate")
    page.locator("input[data-column='config.training.learning_rate']").check()
    page.get_by_label("Find a column").fill("loss · best")
    page.locator("input[data-column='metric.loss.best']").check()
    page.get_by_test_id("column-chooser").locator("summary").click()
    head = page.locator("[data-testid=runs-table] thead")
    assert head.locator("th[data-column='config.training.learning_rate']").count() == 1
    # Each run shows its own values, as the API has them.
    by_id = {rows.nth(i).get_attribute("data-run-id"): rows.nth(i) for i in range(rows.count())}
    for rid in (slow, fast):
        lr_cell = by_id[rid].locator("td[data-column='config.training.learning_rate']").inner_text()
        assert float(lr_cell.replace(",", "")) == pytest.approx(lr[rid], rel=1e-3)
        best_cell = by_id[rid].locator("td[data-column='metric.loss.best']").inner_text()
        assert float(best_cell) == pytest.approx(best[rid], rel=1e-3)

    # Sorting by the config column: the server orders the runs, both directions.
    sort_button = head.locator("th[data-column='config.training.learning_rate'] button")
    sort_button.click()
    wait_until(lambda: rows.first.get_attribute("data-run-id") == slow, 10, what="ascending lr")
    assert (
        head.locator("th[data-column='config.training.learning_rate']").get_attribute("aria-sort")
        == "ascending"
    )
    sort_button.click()
    wait_until(lambda: rows.first.get_attribute("data-run-id") == fast, 10, what="descending lr")
    assert "sort=-config.training.learning_rate" in page.url
    # Sorting by a metric's best value.
    head.locator("th[data-column='metric.loss.best'] button").click()
    lowest = min(best, key=lambda k: best[k])
    wait_until(
        lambda: rows.first.get_attribute("data-run-id") == lowest, 10, what="lowest best loss first"
    )

    # The chosen columns survive a reload (localStorage).
    page.reload()
    wait_until(lambda: rows.count() == 2, 15, what="rows after reload")
    assert head.locator("th[data-column='metric.loss.best']").count() == 1

    # Tags and a note, edited on the run page, stored by the server.
    ui.goto(f"/runs/{fast}")
    notes = page.get_by_test_id("run-notes")
    notes.get_by_label("New tags").fill("sweep-lr fast")
    notes.get_by_role("button", name="Add").click()
    notes.locator(".tag", has_text="sweep-lr").wait_for()
    notes.get_by_label("Note").fill("The high learning rate of the sweep")
    notes.get_by_role("button", name="Save note").click()
    notes.get_by_text("saved").wait_for()
    # A refused tag says why at the field and is not shown as stored.
    notes.get_by_label("New tags").fill("bad/ tag!")
    notes.get_by_role("button", name="Add").click()
    notes.locator(".error").wait_for()
    with panel.client() as c:
        got = c.get(f"/api/runs/{fast}").json()
    assert got["tags"] == ["sweep-lr", "fast"] and got["note"].startswith("The high")

    # Found by the list's search (the note's words) and by a click on a tag chip.
    ui.goto("/runs")
    page.get_by_placeholder("Search name, id, model, tag, note…").fill("high learning rate")
    wait_until(
        lambda: rows.count() == 1 and rows.first.get_attribute("data-run-id") == fast,
        10,
        what="note search",
    )
    page.get_by_placeholder("Search name, id, model, tag, note…").fill("")
    wait_until(lambda: rows.count() >= 2, 10, what="all runs again")
    page.locator(f"tr[data-run-id='{fast}'] button.tag", has_text="sweep-lr").click()
    wait_until(lambda: rows.count() == 1, 10, what="tag filter")
    assert "tag=sweep-lr" in page.url

    # A new address while the list is mounted (a link, an edit, Back): the filters follow it.
    page.evaluate("location.hash = '#/runs?q=high%20learning%20rate'")
    search = page.get_by_placeholder("Search name, id, model, tag, note…")
    wait_until(lambda: search.input_value() == "high learning rate", 10, what="search from URL")
    assert page.locator("button.tag-filter").count() == 0, "the tag filter went with the URL"
    wait_until(lambda: rows.count() == 1, 10, what="the URL's filter applied")

    # Multi-select: every run on the page, then Compare.
    # The same page: the search box, not a new URL (the mounted list keeps its own filters).
    search.fill("table")
    wait_until(lambda: rows.count() == 2, 10, what="the two runs")
    page.get_by_label("Select every run on this page for comparison").check()
    compare = page.get_by_test_id("compare-selected")
    assert compare.inner_text() == "Compare selected (2)"
    screenshot(page, "runs-table", docs=False)
    compare.click()
    page.wait_for_url("**/#/compare?ids=*")
    assert set(page.url.split("ids=")[1].split(",")) == {slow, fast}
