"""The integrations in a real browser: a Slack webhook channel added on the Notifications page
and its Test button (a local HTTP receiver gets the message), the trackers' settings on the
Settings page (a key is never shown back), and a run page's Benchmarks panel scoring a real
checkpoint of the tiny model with a local two-language task (a real worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.benchmark import write_two_languages
from tests.support.e2e import submit, tiny_config, wait_final
from tests.support.receivers import Receiver, receiver  # noqa: F401
from tests.support.ui import UI, browser, built_frontend, link_demo, screenshot, ui  # noqa: F401


def test_notifications_page_and_tracker_settings(
    built_frontend: Path,  # noqa: F811
    browser: Any,  # noqa: F811
    api_only: Any,
    tiny_assets: dict[str, Path],
    receiver: Receiver,  # noqa: F811
) -> None:
    panel = api_only
    link_demo(panel.data_dir, tiny_assets)
    admin = UI(browser, panel.url, panel.token)
    try:
        page = admin.goto("/notifications")
        page.get_by_role("heading", name="Notifications").wait_for()
        page.get_by_label("Name").fill("ops-slack")
        page.get_by_label("URL (kept encrypted)").fill(f"{receiver.url}/slack")
        page.get_by_label("Body").select_option("slack")
        page.get_by_role("button", name="Add channel").click()
        row = page.locator("tr", has_text="ops-slack")
        row.wait_for()
        assert "slack webhook to 127.0.0.1" in row.inner_text()
        assert "/slack" not in page.content()  # the URL is never shown back
        row.get_by_role("button", name="Test").click()
        page.get_by_test_id("notify-message").wait_for()
        assert "test message delivered" in page.get_by_test_id("notify-message").inner_text()
        assert "Test message" in receiver.wait("/slack")[0]["text"]
        screenshot(page, "notifications", docs=False)

        page = admin.goto("/settings")
        form = page.get_by_test_id("tracker-wandb")
        form.wait_for()
        form.get_by_label("project").fill("cpt-demo")
        form.get_by_label("api_key").fill("wandb-secret-key-0123456789")
        form.get_by_role("button", name="Save wandb").click()
        page.get_by_text("(cpt-demo)").wait_for()
        assert "wandb-secret-key" not in page.content()
    finally:
        admin.close()
    assert not admin.console_errors, admin.console_errors


@pytest.mark.slow
def test_the_benchmarks_panel_scores_a_checkpoint(
    ui: UI,  # noqa: F811
    panel: Any,
    tiny_assets: dict[str, Path],
) -> None:
    run = wait_final(panel, submit(panel, tiny_config(tiny_assets, max_steps=4), "bench-ui")["id"])
    assert run["status"] == "succeeded", run
    tasks = write_two_languages(panel.data_dir / "datasets" / "ui-bench-tasks")
    page = ui.goto(f"/runs/{run['id']}")
    panel_ = page.get_by_test_id("benchmarks")
    panel_.wait_for()
    panel_.get_by_label("Task files (YAML or folders, one a line)").fill(str(tasks["en"].parent))
    panel_.get_by_label("Documents per task").fill("5")
    panel_.get_by_role("button", name="Evaluate").click()
    table = page.get_by_test_id("scores")
    table.wait_for(timeout=600_000)
    text = table.inner_text()
    assert "udhr_mc_en" in text and "udhr_mc_ru" in text and "acc_norm" in text
    assert "checkpoint-4" in text
    screenshot(page, "run-benchmarks", docs=False)
