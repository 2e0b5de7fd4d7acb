"""The Models page in Chromium: the models under the roots with what the server read from their
files; a model fetched from the (local) Hub by its id through the form, its progress shown while
it downloads, then listed with where it came from; a bad id is an error at its field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hub import LocalHub
from tests.support.panel import Panel
from tests.support.ui import UI, link_demo, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def hub_ui(browser: Any, hub_panel: Panel, tiny_assets: dict[str, Path]) -> Iterator[UI]:
    link_demo(hub_panel.data_dir, tiny_assets)
    u = UI(browser, hub_panel.url, hub_panel.token)
    try:
        yield u
    finally:
        u.close()
    assert not u.console_errors, u.console_errors


def test_a_model_fetched_from_the_hub_by_id(
    hub_ui: UI, local_hub: LocalHub, tiny_assets: dict[str, Path]
) -> None:
    model = tiny_assets["model"]
    files: dict[str, bytes | Path] = {p.name: p for p in model.iterdir() if p.is_file()}
    files["extra.bin"] = b"\0" * (24 * 1024 * 1024)  # long enough to see it under way
    local_hub.add_repo("org/ui-llama", files)
    page = hub_ui.page
    hub_ui.goto("/models")
    table = page.get_by_test_id("models")
    table.wait_for(timeout=30_000)
    assert "tiny-llama" in table.inner_text() and "LlamaForCausalLM" in table.inner_text()

    hub_id = page.get_by_label("Hub id", exact=True)
    hub_id.fill("not an id")
    page.get_by_role("button", name="Download").click()
    page.get_by_test_id("error-params.repo_id").wait_for()

    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/stream" in r.url else None)
    hub_id.fill("org/ui-llama")
    page.get_by_role("button", name="Download").click()
    page.get_by_test_id("download-progress").wait_for(timeout=60_000)
    # The progress is pushed over the job's own stream, not polled.
    assert any("/api/jobs/" in u and u.split("?")[0].endswith("/stream") for u in streams), streams
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jobs-table tbody tr')]"
        ".some(r => r.dataset.status === 'succeeded')",
        timeout=180_000,
    )
    page.wait_for_function(
        "() => document.querySelector('[data-testid=download-progress]')?.textContent.includes('100 %')",
        timeout=30_000,
    )
    row = page.locator("[data-testid=models] tr", has_text="org--ui-llama")
    row.wait_for(timeout=30_000)
    text = row.inner_text()
    assert "Hub: org/ui-llama@main" in text and "LlamaForCausalLM" in text
    screenshot(page, "models")


def test_the_launch_form_takes_a_hub_id(
    hub_ui: UI, local_hub: LocalHub, tiny_assets: dict[str, Path]
) -> None:
    """A Hub id typed as the base model: the run page says it waits for the download (its
    percentage once the download has measured one), then the run starts on the downloaded
    model."""
    files: dict[str, bytes | Path] = {
        p.name: p for p in tiny_assets["model"].iterdir() if p.is_file()
    }
    files["extra.bin"] = b"\1" * (48 * 1024 * 1024)
    local_hub.add_repo("org/form-llama", files)
    page = hub_ui.page
    hub_ui.goto("/launch")
    base = page.get_by_label("Base model", exact=True)
    base.wait_for(timeout=30_000)
    base.fill("hf:org/form-llama")
    page.get_by_label("Run name").fill("from a hub id")
    page.get_by_label("Max steps", exact=True).fill("4")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"#/runs/[^/?]+$"), timeout=60_000)
    banner = page.get_by_test_id("waiting-reason")
    page.wait_for_function(
        "() => /waiting for download of org\\/form-llama \\(/"
        ".test(document.querySelector('[data-testid=waiting-reason]')?.textContent ?? '')",
        timeout=60_000,
    )
    screenshot(page, "run-waiting-for-download", docs=False)
    page.wait_for_function(
        "() => ['running', 'succeeded'].includes("
        "document.querySelector('.page-head .badge')?.dataset.status)",
        timeout=240_000,
    )
    assert banner.count() == 0 or "download" not in banner.inner_text()
