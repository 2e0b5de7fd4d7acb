""" "Try it" on the run page: a prompt continued by a checkpoint, as a job on the real worker, the
answer shown when it ends (streamed from the job log while it runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.e2e import tiny_config
from tests.support.ui import UI, screenshot

pytestmark = pytest.mark.browser


def test_try_it_continues_a_prompt_with_a_checkpoint(ui: UI, tiny_assets: dict[str, Path]) -> None:
    r = ui.page.request.post(
        "/api/runs",
        data={
            "name": "try it",
            "preset": "tiny-demo",
            "config": tiny_config(tiny_assets, max_steps=4),
        },
        headers={"Authorization": f"Bearer {ui.token}"},
    )
    assert r.status == 201, r.text()
    ui.goto(f"/runs/{r.json()['id']}")
    page = ui.page
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)
    box = page.get_by_test_id("try-it")
    box.wait_for(timeout=30_000)
    assert box.get_by_label("Checkpoint").input_value() == "checkpoint-4"
    box.get_by_label("New tokens").fill("8")
    box.get_by_label("Prompt").fill("Everyone has the right")
    box.get_by_role("button", name="Generate").click()
    status = box.get_by_test_id("try-status")
    status.filter(has_text="tokens in").wait_for(timeout=180_000)
    text = box.get_by_test_id("try-text").inner_text()
    assert text.startswith("Everyone has the right") and len(text) > len("Everyone has the right")
    assert "(greedy)" in status.inner_text()
    screenshot(page, "run-try-it")
