"""An experiment's benchmark scores on its verdict page, and "Score all runs" from there.

Two runs on a queue no worker serves; a pretend worker ships their events and checkpoints and
reports two evaluate jobs queued through ``POST /api/jobs`` (run 0 on its last checkpoint, run 1
on an earlier one), so the panel stores the scores itself and every figure is known. The page
must show exactly the stored values and name run 1's checkpoint; "Score all runs" must queue one
evaluate job per run on its last checkpoint (they stay queued: nobody serves that queue)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.pretend import Pretend, checkpoint, evaluate, task
from tests.support.ui import UI, wait_until

pytestmark = [pytest.mark.browser]


def test_verdict_page_shows_stored_scores_and_scores_all_runs(
    ui: UI, panel: Any, tiny_assets: Any
) -> None:
    corpus = tiny_assets["corpus"]
    spec = {
        "name": "scores on the verdict",
        "preset": "tiny-demo",
        "base": {
            "data": {
                "eval_sets": {
                    "kn": str(corpus / "udhr_kn_Knda.txt"),
                    "en": str(corpus / "udhr_en_Latn.txt"),
                }
            },
            "training": {"eval_steps": 10},
            "launch": {"queue": "nobody-" + uuid.uuid4().hex[:6]},
        },
        "axes": {"method.finetuning_type": ["lora", "full"]},
        "target": "kn",
        "retain": ["en"],
        "forgetting_cap": 0.05,
        "budget": {"steps": 20},
    }
    with panel.client() as c:
        r = c.post("/api/experiments", params={"launch": "true"}, json=spec)
        assert r.status_code == 201, r.text
        exp_id, ids = r.json()["id"], [x["id"] for x in r.json()["runs"]]
    for rid in ids:
        p = Pretend(panel, rid)
        p.start()
        p.eval(0, 3.0, 2.0)
        checkpoint(panel, p, 10)
        p.eval(20, 2.0, 2.01)
        checkpoint(panel, p, 20)
        p.status("succeeded", "finished")
    acc0, acc1 = 0.6666666666666666, 0.3141592653589793
    evaluate(panel, ids[0], "checkpoint-20", [task("xnli_en", 9, acc=(acc0, 0.157))])
    evaluate(panel, ids[1], "checkpoint-10", [task("xnli_en", 9, acc=(acc1, None))])

    page = ui.goto(f"/experiments/{exp_id}")
    table = page.get_by_test_id("verdict-table")
    table.wait_for()
    assert table.locator('th[data-bench="xnli_en acc"]').count() == 1
    cells = [table.locator(f'tr[data-run="{rid}"] [data-testid="verdict-score"]') for rid in ids]
    assert [c.count() for c in cells] == [1, 1]
    assert float(cells[0].get_attribute("data-value") or "nan") == acc0
    assert cells[0].inner_text().strip() == "0.6667"
    assert float(cells[1].get_attribute("data-value") or "nan") == acc1
    assert cells[1].inner_text().strip() == "0.3142 @ checkpoint-10"

    form = page.get_by_test_id("score-all")
    form.get_by_test_id("score-all-tasks").fill("xnli_en")
    form.get_by_test_id("score-all-submit").click()
    started = form.get_by_test_id("score-all-jobs").locator("li")
    wait_until(lambda: started.count() == 2, 15, what="two evaluate jobs")
    jobs = []
    with panel.client() as c:
        for rid in ids:
            link = started.locator(f'xpath=self::li[@data-run="{rid}"]//a')
            job_id = (link.get_attribute("href") or "").rsplit("/", 1)[-1]
            job = c.get(f"/api/jobs/{job_id}").json()
            jobs.append(job)
            c.post(f"/api/jobs/{job_id}/cancel")  # nobody would ever serve them
    for rid, job in zip(ids, jobs, strict=True):
        assert job["kind"] == "evaluate" and job["status"] == "queued", job
        assert job["params"]["run_id"] == rid and job["params"]["checkpoint"] == "checkpoint-20"
        assert job["params"]["tasks"] == ["xnli_en"] and job["params"]["task_files"] == []
