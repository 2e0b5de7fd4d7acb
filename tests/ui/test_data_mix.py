"""A two-source mixture (the new language plus English replay) trains, and the run page shows
the mix as the training script reported it: weight, files, documents, tokens and blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ui import UI, screenshot

pytestmark = pytest.mark.browser


def test_run_page_shows_the_data_mix(ui: UI, tiny_assets: dict[str, Path]) -> None:
    corpus = tiny_assets["corpus"]
    config = {
        "data": {
            "dataset_dir": None,
            "train_file": str(corpus / "udhr_kn_Knda.txt"),
            "data_sources": [
                {"path": str(corpus / "udhr_en_Latn.txt"), "weight": 0.5, "name": "en-replay"}
            ],
        },
        "training": {"max_steps": 4},
    }
    r = ui.page.request.post(
        "/api/runs",
        data={"name": "mixture", "preset": "tiny-demo", "config": config},
        headers={"Authorization": f"Bearer {ui.token}"},
    )
    assert r.status == 201, r.text()
    run_id = r.json()["id"]
    ui.goto(f"/runs/{run_id}")
    page = ui.page
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)
    mix = page.get_by_test_id("data-mix")
    mix.wait_for(timeout=30_000)
    rows = mix.locator("tbody tr")
    assert rows.count() == 2
    replay = mix.locator("tr[data-source=en-replay]")
    assert "33 %" in replay.inner_text()  # weight 0.5 next to the train file's 1.0
    screenshot(page, "run-data-mix")
