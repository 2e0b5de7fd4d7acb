"""Benchmarks on checkpoints through the panel: a tiny LoRA run, then an ``evaluate`` job on its
checkpoint (through the adapter, no merge) over a two-language multiple-choice task in the
harness's YAML (local JSONL in the datasets folder); the scores are stored per checkpoint, task
and metric and answered for the run page and Compare. Bad parameters are 422s at their field; a
task file that would run code fails the job with the reason."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.benchmark import write_two_languages
from tests.support.e2e import TERMINAL, submit, tiny_config, wait_final
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def _wait_job(panel: Panel, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with panel.client() as c:
        while True:
            job = c.get(f"/api/jobs/{job_id}").json()
            if job["status"] in TERMINAL:
                return dict(job)
            assert time.monotonic() < deadline, job
            time.sleep(0.5)


def test_an_evaluate_job_scores_a_lora_checkpoint_and_the_scores_are_kept(
    panel: Panel, tiny_assets: dict[str, Path]
) -> None:
    run = wait_final(panel, submit(panel, tiny_config(tiny_assets, max_steps=4), "bench")["id"])
    assert run["status"] == "succeeded", run
    tasks = write_two_languages(panel.data_dir / "datasets" / "bench-tasks")
    folder = str(tasks["en"].parent)
    params = {"run_id": run["id"], "checkpoint": "checkpoint-4", "task_files": [folder]}
    with panel.client() as c:
        r = c.post("/api/jobs", json={"kind": "evaluate", "params": {**params, "task_files": []}})
        assert r.status_code == 422 and "task_files" in r.text, r.text
        r = c.post(
            "/api/jobs",
            json={"kind": "evaluate", "params": {**params, "task_files": ["/etc/passwd"]}},
        )
        assert r.status_code == 422 and "task_files" in str(r.json()["detail"][0]["loc"])
        r = c.post("/api/jobs", json={"kind": "evaluate", "params": {**params, "limit": 10}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
    job = _wait_job(panel, job_id)
    with panel.client() as c:
        log = c.get(f"/api/jobs/{job_id}/log").json()["text"]
    assert job["status"] == "succeeded", (job, log[-3000:])
    assert "udhr_mc_en: acc = " in log and "udhr_mc_ru: acc = " in log

    with panel.client() as c:
        scores = c.get(f"/api/runs/{run['id']}/scores").json()
        latest = c.get("/api/scores/latest", params={"run": [run["id"]]}).json()
    keys = {(s["checkpoint"], s["task"], s["metric"]) for s in scores}
    assert keys == {
        ("checkpoint-4", t, m) for t in ("udhr_mc_en", "udhr_mc_ru") for m in ("acc", "acc_norm")
    }
    assert all(s["samples"] == 10 and s["step"] == 4 and 0 <= s["value"] <= 1 for s in scores)
    assert {(s["task"], s["metric"]) for s in latest[run["id"]]} == {k[1:] for k in keys}
    result = {
        (t["task"], m["metric"]): m["value"] for t in job["result"]["tasks"] for m in t["metrics"]
    }
    assert {(s["task"], s["metric"]): s["value"] for s in scores} == result

    # A task file that would import Python from its folder: the job fails and says why.
    bad = Path(folder) / "bad" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(tasks["en"].read_text().replace('"{{context}}"', "!function utils.text"))
    with panel.client() as c:
        r = c.post(
            "/api/jobs",
            json={"kind": "evaluate", "params": {**params, "task_files": [str(bad)]}},
        )
        assert r.status_code == 201, r.text
    failed = _wait_job(panel, r.json()["id"])
    assert failed["status"] == "failed" and "!function" in (failed["status_reason"] or ""), failed
