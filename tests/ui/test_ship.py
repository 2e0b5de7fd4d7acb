"""Results back out from the run page: a full-weight checkpoint exported for serving by the real
worker, its re-scoring on the run's evaluation set shown next to the checkpoint's (the numbers
are the job's result), the model card downloadable, and a bad Hub repo refused at its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_export_from_the_run_page_shows_the_change_it_made(
    ui: UI, panel: Any, tiny_assets: dict[str, Path]
) -> None:
    english = tiny_assets["corpus"] / "udhr_en_Latn.txt"
    config: dict[str, Any] = {
        "method": {"finetuning_type": "full"},
        "data": {
            "max_eval_samples": 8,
            "eval_sets": {"en": {"path": str(english), "role": "retain", "max_documents": 4}},
        },
        "training": {"max_steps": 4, "logging_steps": 1, "save_steps": 4, "learning_rate": 5e-4},
    }
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": "ship", "preset": "tiny-demo", "config": config})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        wait_until(
            lambda: c.get(f"/api/runs/{run_id}").json()["status"] in ("succeeded", "failed"),
            300,
            interval=1,
            what="the run to end",
        )
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "succeeded"

    page = ui.page
    ui.goto(f"/runs/{run_id}")
    box = page.get_by_test_id("ship")
    box.wait_for(timeout=30_000)
    assert box.get_by_label("Checkpoint").input_value() == "checkpoint-4"
    # The card is what the panel measured, as Markdown.
    href = box.get_by_role("link", name="Model card").get_attribute("href") or ""
    card = page.request.get(href)
    assert card.status == 200 and "checkpoint" in card.text().lower(), card.text()[:200]

    # A repo that is not org/name: the server's 422, shown, and no job.
    box.get_by_label("Hub repo").fill("not a repo")
    box.get_by_role("button", name="Publish").click()
    box.get_by_test_id("ship-error").wait_for(timeout=30_000)
    assert "repo_id" in box.get_by_test_id("ship-error").inner_text()

    box.get_by_role("button", name="Export for serving").click()
    line = box.locator("[data-testid=export-job][data-status=succeeded]")
    line.wait_for(timeout=300_000)
    with panel.client() as c:
        jobs = c.get("/api/jobs", params={"kind": "export", "run_id": run_id}).json()
        publishes = c.get("/api/jobs", params={"kind": "publish", "run_id": run_id}).json()
    assert publishes == [] and len(jobs) == 1 and jobs[0]["status"] == "succeeded"
    row = jobs[0]["result"]["eval"][0]
    cells = [td.inner_text() for td in line.locator("[data-testid=export-eval] tbody tr td").all()]
    assert cells[0] == "en" and cells[1] == str(row["characters"])
    # Shown to 4 decimals (trailing zeros dropped): the job's own numbers.
    assert abs(float(cells[2]) - row["source_bits_per_char"]) <= 5e-5, (cells, row)
    assert abs(float(cells[3]) - row["export_bits_per_char"]) <= 5e-5, (cells, row)
    assert "bfloat16" in line.inner_text()
    screenshot(page, "run-export")
