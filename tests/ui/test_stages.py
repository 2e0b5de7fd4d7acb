"""A staged run in Chromium against the real API and worker: the run page's charts mark where
the second stage begins (its ``stage`` event), on the one metrics stream of the run."""

from __future__ import annotations

from typing import Any

import pytest

from cpt_contract.statuses import TERMINAL_STATUSES
from tests.support.ui import UI, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_run_page_marks_the_stage_boundary(ui: UI, panel: Any) -> None:
    stages = [
        {"method": "new_embeddings", "max_steps": 4, "learning_rate": 1e-2, "name": "embeddings"},
        {"max_steps": 4},
    ]
    training = {"max_steps": -1, "stages": stages, "logging_steps": 1, "save_steps": 100}
    with panel.client() as c:
        r = c.post(
            "/api/runs",
            json={"name": "ui staged run", "preset": "tiny-demo", "config": {"training": training}},
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        wait_until(
            lambda: c.get(f"/api/runs/{rid}").json()["status"] in TERMINAL_STATUSES,
            timeout=600,
            what="the staged run to end",
        )
        done = c.get(f"/api/runs/{rid}").json()
        assert done["status"] == "succeeded", done
        metrics = c.get(f"/api/runs/{rid}/metrics").json()
        checkpoints = [x["step"] for x in c.get(f"/api/runs/{rid}/checkpoints").json()]
    assert [(s["index"], s["step"], s["name"]) for s in metrics["stages"]] == [(1, 4, "2-lora")]
    assert 4 in checkpoints  # the end of stage 1 is saved
    assert metrics["series"]["loss"]["step"] == list(range(1, 9))  # one stream over both

    ui.goto(f"/runs/{rid}")
    charts = ui.page.locator(".run-page figure.chart")
    charts.first.wait_for(timeout=30_000)
    assert charts.count() >= 5
    for i in range(charts.count()):
        assert charts.nth(i).get_attribute("data-marks") == "4", i
