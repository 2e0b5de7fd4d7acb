"""Experiments over real HTTP: the grid and its 422s, launch/cancel/resume of its runs, early
stopping decided at ingest, and the verdict's numbers against what each run reported.

The runs sit on a queue no worker serves; a pretend worker (the worker token and each claim's
lease) claims them and ships the events a training run writes, so every number is known.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.panel import Panel
from tests.support.pretend import Pretend, checkpoint, evaluate, task

Api = tuple[Panel, dict[str, Path]]


def _sets(assets: dict[str, Path]) -> dict[str, Any]:
    """Two held-out files under the allowed roots: the target (Kannada) and English."""
    root = assets["root"] / "heldout"
    root.mkdir(exist_ok=True)
    (root / "kn.txt").write_text("ಕನ್ನಡ ಪಠ್ಯ ಒಂದು\n" * 5)
    (root / "en.txt").write_text("All human beings are born free\n" * 5)
    return {"kn": str(root / "kn.txt"), "en": {"path": str(root / "en.txt")}}


def _base_tokenizer(assets: dict[str, Path]) -> str:
    tok = assets["root"] / "tok" / "base"
    tok.mkdir(parents=True, exist_ok=True)
    (tok / "tokenizer.json").write_text("{}")
    return str(tok)


def _spec(assets: dict[str, Path], queue: str | None = None, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"data": {"eval_sets": _sets(assets)}, "training": {"eval_steps": 10}}
    if queue:
        base["launch"] = {"queue": queue}
    return {
        "name": "tok x method",
        "preset": "tiny-demo",
        "base": base,
        "axes": {
            "model.tokenizer_name_or_path": [_base_tokenizer(assets), str(assets["tokenizer"])],
            "method.finetuning_type": ["lora", "full"],
        },
        "target": "kn",
        "retain": ["en"],
        "forgetting_cap": 0.05,
        "budget": {"steps": 20},
        **extra,
    }


def _errors(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.text
    return list(r.json()["detail"])


def test_preview_expands_the_grid_with_budget_and_roles(api: Api) -> None:
    panel, assets = api
    with panel.client() as c:
        r = c.post("/api/experiments/preview", json=_spec(assets))
    assert r.status_code == 200, r.text
    children = r.json()["runs"]
    assert len(children) == 4
    combos = {
        (ch["values"]["model.tokenizer_name_or_path"], ch["values"]["method.finetuning_type"])
        for ch in children
    }
    assert len(combos) == 4
    for ch in children:
        cfg = ch["config"]
        assert cfg["method"]["finetuning_type"] == ch["values"]["method.finetuning_type"]
        assert (
            cfg["model"]["tokenizer_name_or_path"] == ch["values"]["model.tokenizer_name_or_path"]
        )
        assert cfg["training"]["max_steps"] == 20  # the budget
        assert cfg["data"]["eval_sets"]["kn"]["role"] == "target"
        assert cfg["data"]["eval_sets"]["en"]["role"] == "retain"


def test_budget_in_tokens_uses_each_runs_tokens_per_step(api: Api) -> None:
    panel, assets = api
    spec = _spec(assets, budget={"tokens": 10_000})
    spec["axes"] = {"training.per_device_train_batch_size": [2, 4]}
    with panel.client() as c:
        r = c.post("/api/experiments/preview", json=spec)
        assert r.status_code == 200, r.text
        # tiny-demo: block 64, no accumulation, one process: 10,000 / (2*64) and / (4*64).
        assert [ch["config"]["training"]["max_steps"] for ch in r.json()["runs"]] == [79, 40]
        spec["base"]["data"]["block_size"] = None
        errors = _errors(c.post("/api/experiments/preview", json=spec))
    assert errors[0]["loc"] == ["body", "budget", "tokens"] and "block_size" in errors[0]["msg"]


def test_bad_axis_value_is_a_422_naming_axis_and_value(api: Api) -> None:
    panel, assets = api
    spec = _spec(assets)
    spec["axes"]["training.learning_rate"] = [1e-4, -1.0]
    with panel.client() as c:
        errors = _errors(c.post("/api/experiments", json=spec))
        assert errors == [
            {
                "loc": ["body", "axes", "training.learning_rate", 1],
                "msg": errors[0]["msg"],
                "type": errors[0]["type"],
            }
        ]
        assert "axis training.learning_rate value -1.0" in errors[0]["msg"]
        # A path outside the allowed roots as an axis value.
        spec = _spec(assets)
        spec["axes"]["model.tokenizer_name_or_path"].append("/etc")
        errors = _errors(c.post("/api/experiments", json=spec))
        assert errors[0]["loc"] == ["body", "axes", "model.tokenizer_name_or_path", 2]
        assert "'/etc'" in errors[0]["msg"] and "allowed roots" in errors[0]["msg"]
        # A misspelt field as the axis.
        spec = _spec(assets)
        spec["axes"] = {"training.lerning_rate": [1e-4]}
        errors = _errors(c.post("/api/experiments", json=spec))
        assert errors[0]["loc"] == ["body", "axes", "training.lerning_rate", 0]
        assert "learning_rate" in errors[0]["msg"]
        # An unknown target set; a base error shared by every run is named once, at the base.
        spec = _spec(assets, target="ta")
        spec["base"]["training"]["save_steps"] = 0
        errors = _errors(c.post("/api/experiments", json=spec))
        locs = [e["loc"] for e in errors]
        assert locs == [["body", "base", "training", "save_steps"]], errors
        spec["base"]["training"]["save_steps"] = 10
        errors = _errors(c.post("/api/experiments", json=spec))
        assert errors[0]["loc"] == ["body", "target"] and "'ta'" in errors[0]["msg"]
        # Too many runs.
        spec = _spec(assets)
        spec["axes"]["training.seed"] = list(range(17))
        errors = _errors(c.post("/api/experiments", json=spec))
        assert errors[0]["loc"] == ["body", "axes"] and "68 runs" in errors[0]["msg"]


def test_listed_combinations(api: Api) -> None:
    panel, assets = api
    spec = _spec(assets)
    tok, ext = spec["axes"]["model.tokenizer_name_or_path"]
    spec["axes"] = {}
    spec["combinations"] = [
        {"model.tokenizer_name_or_path": tok, "method.finetuning_type": "lora"},
        {"model.tokenizer_name_or_path": ext, "method.finetuning_type": "full"},
    ]
    with panel.client() as c:
        r = c.post("/api/experiments/preview", json=spec)
        assert r.status_code == 200, r.text
        assert [ch["values"]["method.finetuning_type"] for ch in r.json()["runs"]] == [
            "lora",
            "full",
        ]
        spec["combinations"][1]["method.finetuning_type"] = "half"
        errors = _errors(c.post("/api/experiments/preview", json=spec))
    assert errors[0]["loc"] == ["body", "combinations", 1, "method.finetuning_type"]
    assert "'half'" in errors[0]["msg"]


def test_seed_preset_is_offered(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        presets = c.get("/api/experiments/presets").json()
    seed = next(p for p in presets if p["name"] == "seed-2x2")
    axes = seed["spec"]["axes"]
    assert axes["method.finetuning_type"] == ["lora", "full"]
    assert [Path(p).name for p in axes["model.tokenizer_name_or_path"]] == [
        "tiny-llama",
        "tokenizer-extended",
    ]


def test_launch_cancel_resume(api: Api) -> None:
    panel, assets = api
    queue = "nobody-" + uuid.uuid4().hex[:6]
    with panel.client() as c:
        r = c.post("/api/experiments", json=_spec(assets, queue))
        assert r.status_code == 201, r.text
        exp = r.json()
        assert exp["status"] == "draft" and exp["run_count"] == 4 and exp["runs"] == []
        r = c.post(f"/api/experiments/{exp['id']}/launch")
        assert r.status_code == 200, r.text
        launched = r.json()
        assert launched["status"] == "running" and len(launched["runs"]) == 4
        for run in launched["runs"]:
            assert run["status"] == "queued" and run["experiment_id"] == exp["id"]
            assert run["tags"] == [f"exp:{exp['id']}"]
            assert set(run["experiment_values"]) == {
                "model.tokenizer_name_or_path",
                "method.finetuning_type",
            }
            # Each child is an ordinary run with its own page.
            assert c.get(f"/api/runs/{run['id']}").json()["name"].startswith("tok x method · ")
        assert c.post(f"/api/experiments/{exp['id']}/launch").status_code == 409
        # Its runs are found by their tag.
        listed = c.get("/api/runs", params={"tag": f"exp:{exp['id']}"}).json()
        assert listed["total"] == 4
        r = c.post(f"/api/experiments/{exp['id']}/cancel")
        assert r.status_code == 200, r.text
        assert {x["status"] for x in r.json()["runs"]} == {"cancelled"}
        assert r.json()["status"] == "incomplete"
        r = c.post(f"/api/experiments/{exp['id']}/resume")
        assert r.status_code == 200, r.text
        after = r.json()["runs"]
        assert {x["status"] for x in after} == {"queued"} and {x["attempt"] for x in after} == {2}
        assert all(x["resume_from"] is None for x in after)  # nothing saved: from the start
        c.post(f"/api/experiments/{exp['id']}/cancel")
        assert c.delete(f"/api/experiments/{exp['id']}").status_code == 204
        assert c.get(f"/api/experiments/{exp['id']}").status_code == 404


def _launch(panel: Panel, spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    with panel.client() as c:
        r = c.post("/api/experiments", params={"launch": "true"}, json=spec)
        assert r.status_code == 201, r.text
        return r.json()["id"], r.json()["runs"]


def test_early_stopping_and_verdict(api: Api) -> None:
    """4 runs, keep half: at rung 1 the two worse runs are stopped (one as it arrives, one
    when a better run arrives after it); the two others finish and the verdict judges them."""
    panel, assets = api
    spec = _spec(assets, "nobody-" + uuid.uuid4().hex[:6], early_stopping={"keep": 0.5})
    exp_id, runs = _launch(panel, spec)
    w = [Pretend(panel, r["id"]) for r in runs]
    for p in w:
        p.start()
        p.eval(0, 3.0, 2.0)
    # Rung 1 (step 10): run 2 is worst and arrives while only 2 others are there: kept for now.
    assert not w[0].eval(10, 2.0, 2.01, tokens=640)["cancel_requested"]
    assert not w[1].eval(10, 2.5, 2.02, tokens=640)["cancel_requested"]
    assert w[2].eval(10, 2.9, 2.01, tokens=640)["cancel_requested"]  # 2 better: out
    with panel.client() as c:
        stopped = c.get(f"/api/runs/{runs[2]['id']}").json()
        assert stopped["status"] == "cancelling"
        assert stopped["status_reason"] == (
            "stopped early at rung 1 (bits/char 2.9000, cut-off 2.5000)"
        )
    # Run 3 beats run 1: run 1 falls out of the best half and is stopped too.
    assert not w[3].eval(10, 2.2, 2.2, tokens=640)["cancel_requested"]
    assert w[1].send("log", 11, loss=1.0)["cancel_requested"]
    for i in (1, 2):
        w[i].status("cancelled", "cancelled on request")
    # The two kept runs finish: run 0 forgets too much, run 3 stays within the cap.
    w[0].eval(20, 1.5, 2.10, tokens=1280)
    w[3].eval(20, 1.8, 2.03, tokens=1280)
    for i in (0, 3):
        w[i].send("sample", 20, set="kn", prompt="ಕನ್ನಡ", text=f"out {i}", mode="greedy")
        w[i].status("succeeded", "finished")
    with panel.client() as c:
        for i, value, cut in ((1, 2.5, 2.2), (2, 2.9, 2.5)):
            run = c.get(f"/api/runs/{runs[i]['id']}").json()
            assert run["status"] == "cancelled"
            assert run["status_reason"] == (
                f"stopped early at rung 1 (bits/char {value:.4f}, cut-off {cut:.4f})"
            )
        v = c.get(f"/api/experiments/{exp_id}/verdict").json()
        md = c.get(f"/api/experiments/{exp_id}/verdict/export", params={"format": "md"})
        csv_text = c.get(f"/api/experiments/{exp_id}/verdict/export", params={"format": "csv"}).text
        exp = c.get(f"/api/experiments/{exp_id}").json()
    assert exp["status"] == "finished" and exp["counts"] == {"stopped_early": 2, "succeeded": 2}
    rows = {r["run_id"]: r for r in v["rows"]}
    r0, r3 = rows[runs[0]["id"]], rows[runs[3]["id"]]
    assert r0["sets"]["kn"] == {
        "start_step": 0,
        "start": 3.0,
        "end_step": 20,
        "end": 1.5,
        "change": -1.5,
    }
    assert r0["forgetting"]["en"] == pytest.approx(0.10) and r0["within_cap"] is False
    assert r3["forgetting"]["en"] == pytest.approx(0.03) and r3["within_cap"] is True
    assert r3["trainable_params"] == 1000 and r3["tokens_seen"] == 1280 and r3["world_size"] == 2
    assert r3["curve"]["step"] == [0, 10, 20] and r3["curve"]["value"] == [3.0, 2.2, 1.8]
    assert rows[runs[2]["id"]]["stopped_early"] == {
        "rung": 1,
        "step": 10,
        "value": 2.9,
        "cutoff": 2.5,
    }
    assert v["winner"]["run_id"] == runs[3]["id"] and v["winner"]["runner_up"] is None
    assert v["winner"]["target_bits_per_char"] == 1.8
    assert v["warnings"] == []
    assert set(v["pareto"]["en"]) == {runs[0]["id"], runs[3]["id"]}
    rung1 = v["rungs"][0]
    assert rung1["rung"] == 1 and rung1["kept"] == 2 and rung1["cutoff"] == 2.2
    assert [p["stopped"] for p in rung1["runs"]] == [False, False, True, True]
    assert [p["texts"] for p in v["samples"]["prompts"]] == [
        {runs[0]["id"]: "out 0", runs[3]["id"]: "out 3"}
    ]
    assert md.status_code == 200 and "## Winner" in md.text and runs[3]["id"] in md.text
    assert "stopped early" in md.text and "rung 1: keep 2, cut-off 2.2000" in md.text
    table = list(csv.reader(io.StringIO(csv_text)))
    assert table[0][:4] == [
        "run",
        "model.tokenizer_name_or_path",
        "method.finetuning_type",
        "status",
    ]
    assert len(table) == 5


def test_no_run_within_the_cap_and_text_warning(api: Api) -> None:
    panel, assets = api
    spec = _spec(assets, "nobody-" + uuid.uuid4().hex[:6])
    spec["axes"] = {"method.finetuning_type": ["lora", "full"]}
    exp_id, runs = _launch(panel, spec)
    w = [Pretend(panel, r["id"]) for r in runs]
    w[0].start()
    w[1].start(sha="cd" * 32)  # scored other text
    for p in w:
        p.eval(0, 3.0, 2.0)
        p.eval(20, 2.0, 2.5)
        p.status("succeeded", "finished")
    with panel.client() as c:
        v = c.get(f"/api/experiments/{exp_id}/verdict").json()
    assert v["winner"] is None and v["no_winner"] == "no run is within the cap"
    assert any("the digests differ" in w for w in v["warnings"])
    # Compare asks the same rule (one copy of it, on the server).
    with panel.client() as c:
        ids = [("run_id", r["id"]) for r in runs]
        cmp = c.get("/api/compare/text", params=ids).json()["differences"]
        assert [d for d in cmp if d.startswith("kn:")] and all(
            "the digests differ" in d for d in cmp
        )
        assert c.get("/api/compare/text", params=ids[:1]).json() == {"differences": []}
        assert c.get("/api/compare/text", params=[("run_id", "r-nosuch")]).status_code == 404
    assert all(r["within_cap"] is False for r in v["rows"])


def test_verdict_carries_the_stored_benchmark_scores(api: Api) -> None:
    """Run 0 is scored on its last checkpoint (and an older one, which must not show); run 1
    only on an earlier checkpoint, which the verdict names. Every figure is the stored one."""
    panel, assets = api
    spec = _spec(assets, "nobody-" + uuid.uuid4().hex[:6])
    spec["axes"] = {"method.finetuning_type": ["lora", "full"]}
    exp_id, runs = _launch(panel, spec)
    w = [Pretend(panel, r["id"]) for r in runs]
    ids = [r["id"] for r in runs]
    for p in w:
        p.start()
        p.eval(0, 3.0, 2.0)
        checkpoint(panel, p, 10)
        p.eval(20, 2.0, 2.01)
        checkpoint(panel, p, 20)
        p.status("succeeded", "finished")
    acc0, acc0_old, acc1 = 0.6666666666666666, 0.123456789, 0.3141592653589793
    evaluate(panel, ids[0], "checkpoint-10", [task("xnli_en", 9, acc=(acc0_old, None))])
    evaluate(
        panel,
        ids[0],
        "checkpoint-20",
        [task("xnli_en", 9, acc=(acc0, 0.1571348402636772), acc_norm=(0.5, None))],
    )
    evaluate(panel, ids[1], "checkpoint-10", [task("xnli_en", 9, acc=(acc1, 0.16))])
    with panel.client() as c:
        v = c.get(f"/api/experiments/{exp_id}/verdict").json()
        stored = {i: c.get(f"/api/runs/{i}/scores").json() for i in ids}
        md = c.get(f"/api/experiments/{exp_id}/verdict/export", params={"format": "md"}).text
        csv_text = c.get(f"/api/experiments/{exp_id}/verdict/export", params={"format": "csv"}).text
        as_json = c.get(f"/api/experiments/{exp_id}/verdict/export", params={"format": "json"})
    assert v["benchmarks"] == [
        {"task": "xnli_en", "metric": "acc"},
        {"task": "xnli_en", "metric": "acc_norm"},
    ]
    rows = {r["run_id"]: r for r in v["rows"]}
    assert [rows[i]["last_checkpoint"] for i in ids] == ["checkpoint-20", "checkpoint-20"]
    keep = ("task", "metric", "value", "stderr", "samples", "num_fewshot", "checkpoint", "step")
    for i in ids:  # each verdict score is a stored row, field for field
        for s in rows[i]["scores"]:
            match = [x for x in stored[i] if all(x[k] == s[k] for k in keep)]
            assert len(match) == 1 and match[0]["job_id"] == s["job_id"], (s, stored[i])
    assert [
        (s["metric"], s["value"], s["checkpoint"], s["final"]) for s in rows[ids[0]]["scores"]
    ] == [
        ("acc", acc0, "checkpoint-20", True),
        ("acc_norm", 0.5, "checkpoint-20", True),
    ]
    assert rows[ids[0]]["scores"][0]["stderr"] == 0.1571348402636772
    assert [
        (s["metric"], s["value"], s["checkpoint"], s["final"]) for s in rows[ids[1]]["scores"]
    ] == [("acc", acc1, "checkpoint-10", False)]
    assert as_json.json() == v | {"experiment": as_json.json()["experiment"]}
    # CSV: exactly the stored values (no rounding) and the checkpoint each is from.
    table = list(csv.DictReader(io.StringIO(csv_text)))
    by_run = {t["run"]: t for t in table}
    assert float(by_run[ids[0]]["xnli_en acc"]) == acc0
    assert by_run[ids[0]]["xnli_en acc checkpoint"] == "checkpoint-20"
    assert float(by_run[ids[1]]["xnli_en acc"]) == acc1
    assert by_run[ids[1]]["xnli_en acc checkpoint"] == "checkpoint-10"
    assert by_run[ids[1]]["xnli_en acc_norm"] == "\u2013"
    assert str(acc0_old) not in csv_text and "0.1235" not in md
    # Markdown: 4 decimals, the checkpoint named where it is not the run's last.
    assert "| xnli_en acc | xnli_en acc_norm |" in md
    line0 = next(line for line in md.splitlines() if line.startswith(f"| {ids[0]} "))
    line1 = next(line for line in md.splitlines() if line.startswith(f"| {ids[1]} "))
    assert line0.endswith("| 0.6667 | 0.5000 |")
    assert line1.endswith("| 0.3142 (checkpoint-10) | \u2013 |")
