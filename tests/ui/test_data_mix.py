"""A two-source mixture (the new language plus English replay) trains, and the run page shows
the mix as the training script reported it: each source's share of the training tokens (the
replay share asked for), the tokens planned from it, files, documents, tokens and blocks."""

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
                {"path": str(corpus / "udhr_en_Latn.txt"), "name": "en-replay", "role": "replay"}
            ],
            "replay_share": 0.25,
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
    # A quarter of the tokens, to one block of the (small) epoch, as the start event says.
    r = ui.page.request.get(
        f"/api/runs/{run_id}/events?kind=start",
        headers={"Authorization": f"Bearer {ui.token}"},
    )
    rows_of = {s["name"]: s for s in r.json()[-1]["data"]["data_sources"]}
    drawn = sum(s["train_blocks"] for s in rows_of.values())
    share = rows_of["en-replay"]["share"]
    assert abs(share - 0.25) <= 1 / drawn, (share, drawn)
    assert f"{share * 100:.1f} %" in replay.inner_text() and "(replay)" in replay.inner_text()
    planned = replay.get_by_test_id("source-planned").inner_text().replace(",", "")
    assert planned.strip().isdigit() and int(planned) > 0, planned
    screenshot(page, "run-data-mix")
