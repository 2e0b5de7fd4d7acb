"""A run that fails shows a banner with the server's reason; the log jumps to the first error;
clone asks first and then opens the new run."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_failed_run_banner_first_error_and_clone(ui: UI, panel: Any) -> None:
    # Valid for the schema, impossible for the model: no module is called "no_such_proj".
    config = {"method": {"trainable": "no_such_proj"}, "training": {"max_steps": 4}}
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": "ui doomed", "preset": "tiny-demo", "config": config})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]

    page = ui.page
    ui.goto(f"/runs/{run_id}")
    page.locator(".page-head .badge[data-status=failed]").wait_for(timeout=180_000)
    with panel.client() as c:
        reason = c.get(f"/api/runs/{run_id}").json()["status_reason"]
    assert reason
    banner = page.get_by_test_id("failure-banner")
    assert reason in banner.inner_text()

    # The log holds the error; "First error" scrolls to it and marks it.
    log = page.get_by_test_id("log")
    first_error = page.get_by_role("button", name="First error")
    wait_until(lambda: first_error.is_enabled(), 30, what="an error line in the log")
    first_error.click()
    current = log.locator(".log-current")
    assert current.count() == 1
    assert re.search(r"error|traceback|exception|failed", current.inner_text(), re.I)
    assert current.is_visible()

    # Search counts matches.
    page.get_by_placeholder("Search log…").fill("no_such_proj")
    wait_until(
        lambda: page.get_by_test_id("log-matches").inner_text().split()[0] != "0",
        5,
        what="search matches",
    )
    screenshot(page, "run-failed")

    # "Edit & relaunch" opens the form filled with this run's config, ready to fix.
    page.locator(".page-head").get_by_role("link", name="Edit & relaunch").click()
    target = page.get_by_label("LoRA target modules")
    wait_until(lambda: target.input_value() == "no_such_proj", 10, what="the form prefilled")
    assert page.get_by_label("Run name").input_value() == "ui doomed (edited)"
    target.fill("q_proj,v_proj")
    preview = page.get_by_test_id("command-preview")
    wait_until(
        lambda: "--trainable=q_proj,v_proj" in preview.inner_text(), 10, what="fixed preview"
    )
    page.go_back()
    page.locator(".page-head .badge[data-status=failed]").wait_for()

    # Clone asks for confirmation, then opens the copy (a new id, queued by the server).
    page.locator(".page-head").get_by_role("button", name="Clone").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name of the copy").fill("ui doomed again")
    dialog.get_by_test_id("confirm").click()
    page.wait_for_url(re.compile(r"#/runs/(?!" + re.escape(run_id) + r"$)[^/]+$"))
    new_id = page.url.rsplit("/", 1)[-1]
    assert page.locator(".run-title").inner_text() == "ui doomed again"
    with panel.client() as c:
        clone = c.get(f"/api/runs/{new_id}").json()
        assert clone["config"]["method"]["trainable"] == "no_such_proj"
        if clone["status"] in ("queued", "starting", "running"):
            c.post(f"/api/runs/{new_id}/cancel")  # spare the shared worker
