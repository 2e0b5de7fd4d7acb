"""An experiment end to end: real API, real Celery worker, real torchrun on the tiny model.

A 4-run grid with early stopping (keep half): two learning rates that learn and two that
barely move the weights. The worker takes one run at a time, so the two good runs reach rung 1
first; each weak run is stopped there by the server as its evaluation is ingested, ends
``cancelled`` with the reason naming the rung, and keeps the checkpoints it had saved. Rung 1
is at step 20 of 40: the stop reaches the ranks a few steps later on a loaded box (a report
round trip), so the margin to the end is wide and the test asks for "before the end", not for
an exact step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import worker_log_tail
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def _spec(assets: dict[str, Path]) -> dict[str, Any]:
    corpus = assets["corpus"]
    return {
        "name": "e2e halving",
        "preset": "tiny-demo",
        "base": {
            "model": {
                "model_name_or_path": str(assets["model"]),
                "tokenizer_name_or_path": str(assets["tokenizer_extended"]),
            },
            "data": {
                "dataset_dir": str(corpus),
                "validation_split_percentage": 0,
                "eval_sets": {
                    "hi": {"path": str(corpus / "udhr_hi_Deva.txt"), "max_characters": 400},
                    "en": {"path": str(corpus / "udhr_en_Latn.txt"), "max_characters": 400},
                },
            },
            "training": {"eval_steps": 20, "save_steps": 10, "logging_steps": 1},
        },
        "axes": {"training.learning_rate": [3e-3, 2e-3, 1e-7, 1e-8]},
        "target": "hi",
        "retain": ["en"],
        "forgetting_cap": 5.0,
        "budget": {"steps": 40},
        "early_stopping": {"keep": 0.5},
    }


def test_successive_halving_stops_two_at_the_first_rung(
    panel: Panel, tiny_assets: dict[str, Path]
) -> None:
    with panel.client() as c:
        r = c.post("/api/experiments", params={"launch": "true"}, json=_spec(tiny_assets))
        assert r.status_code == 201, r.text
        exp_id = r.json()["id"]
        runs = [x["id"] for x in r.json()["runs"]]
        deadline = time.monotonic() + 600
        while c.get(f"/api/experiments/{exp_id}").json()["status"] == "running":
            assert time.monotonic() < deadline, worker_log_tail(panel)
            time.sleep(1)
        exp = c.get(f"/api/experiments/{exp_id}").json()
        v = c.get(f"/api/experiments/{exp_id}/verdict").json()
        by_id = {x["id"]: x for x in exp["runs"]}
        checkpoints = {rid: c.get(f"/api/runs/{rid}/checkpoints").json() for rid in runs}
    assert exp["status"] == "finished", (exp, worker_log_tail(panel))
    assert [by_id[rid]["status"] for rid in runs] == [
        "succeeded",
        "succeeded",
        "cancelled",
        "cancelled",
    ], [(by_id[rid]["status"], by_id[rid]["status_reason"]) for rid in runs]
    for rid in runs[2:]:
        reason = by_id[rid]["status_reason"]
        assert reason.startswith("stopped early at rung 1 (bits/char "), reason
        assert "cut-off" in reason
        # Stopped after its first evaluation (step 20), well before the end (step 40).
        assert 20 <= by_id[rid]["step"] < 40, by_id[rid]
        # It keeps what it saved before the stop (checkpoint-10 came before the evaluation).
        saved = [ck for ck in checkpoints[rid] if ck["exists"]]
        assert saved and all(ck["step"] <= by_id[rid]["step"] for ck in saved), checkpoints[rid]
        assert any(ck["step"] >= 10 for ck in saved), checkpoints[rid]
    rung1 = v["rungs"][0]
    assert rung1["rung"] == 1 and rung1["kept"] == 2
    assert [p["run_id"] for p in rung1["runs"] if p["stopped"]] == sorted(
        runs[2:], key=lambda rid: next(p["value"] for p in rung1["runs"] if p["run_id"] == rid)
    )
    rows = {row["run_id"]: row for row in v["rows"]}
    for rid in runs[2:]:
        assert rows[rid]["stopped_early"]["rung"] == 1
        # The number in the reason is the stored evaluation's.
        assert f"{rows[rid]['stopped_early']['value']:.4f}" in by_id[rid]["status_reason"]
    assert v["winner"] is not None and v["winner"]["run_id"] in runs[:2]
