"""Datasets in the browser: from the launch form's "scan this dataset" link, a scan job runs on
the worker and reports files, scripts, documents, tokens and blocks; back on the launch form, the
run's tokens, blocks and steps per epoch come from that scan."""

from __future__ import annotations

import pytest

from tests.support.ui import UI, screenshot

pytestmark = pytest.mark.browser


def test_scan_a_multilingual_dataset_then_see_its_counts_at_launch(ui: UI) -> None:
    page = ui.page
    ui.goto("/launch")
    estimate = page.get_by_test_id("data-estimate")
    estimate.wait_for(timeout=30_000)
    assert "No token count yet" in estimate.inner_text()
    estimate.get_by_role("link", name="scan this dataset").click()
    page.wait_for_url("**/#/datasets?*")
    paths = page.get_by_label("Files or directories", exact=True)
    paths.wait_for()
    assert paths.input_value().endswith("/corpus")
    page.get_by_role("button", name="Scan").click()
    page.wait_for_function(
        "() => document.querySelector('.jobs-table tbody tr')?.dataset.status === 'succeeded'",
        timeout=180_000,
    )
    files = page.get_by_test_id("scan-files")
    files.wait_for()
    kn = files.locator("tr", has_text="udhr_kn_Knda.txt")
    assert "Kannada" in kn.inner_text()
    zh = files.locator("tr", has_text="udhr_zh_Hans.txt")
    assert "Han" in zh.inner_text()
    totals = page.get_by_test_id("scan-totals").inner_text()
    assert "tokens" in totals and "blocks" in totals
    screenshot(page, "datasets")

    ui.goto("/launch")
    estimate = page.get_by_test_id("data-estimate")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=data-estimate]')?.textContent.includes('steps per epoch')",
        timeout=30_000,
    )
    text = estimate.inner_text()
    assert "tokens in" in text and "blocks" in text
