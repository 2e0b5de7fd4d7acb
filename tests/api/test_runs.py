"""Creating, validating, listing, cancelling, cloning and deleting runs over real HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import create_run
from tests.support.panel import Panel

Api = tuple[Panel, dict[str, Path]]


def _errors(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.text
    return r.json()["detail"]


def _post(c: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return c.post("/api/runs", json=body)


def test_create_from_preset_deep_merges(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        run = create_run(c, training={"learning_rate": 1e-3})
    cfg = run["config"]
    assert run["status"] == "queued" and run["attempt"] == 1
    assert run["method"] == "lora" and run["model"] == "tiny-llama" and run["preset"] == "tiny-demo"
    assert cfg["training"]["learning_rate"] == 1e-3  # the override
    assert cfg["training"]["max_steps"] == 40  # the preset's value next to it survives
    assert cfg["launch"]["queue"] == panel.env["CPT_QUEUE"]  # default queue = this panel's
    assert run["output_dir"] == str(panel.data_dir / "runs" / run["id"] / "output")


def test_complete_config_without_preset(api: Api) -> None:
    panel, assets = api
    body = {
        "name": "plain",
        "config": {
            "model": {"model_name_or_path": str(assets["model"])},
            "data": {"dataset_dir": str(assets["corpus"])},
            "method": {"finetuning_type": "full"},
        },
    }
    with panel.client() as c:
        r = _post(c, body)
    assert r.status_code == 201, r.text
    assert r.json()["method"] == "full" and r.json()["name"] == "plain"


@pytest.mark.parametrize(
    ("config", "loc", "words"),
    [
        ({"training": {"learning_rate": -1}}, ["training", "learning_rate"], "positive"),
        ({"method": {"lora_rank": 0}}, ["method", "lora_rank"], "at least 1"),
        (
            {"training": {"lerning_rate": 1}},
            ["training", "lerning_rate"],
            "did you mean 'learning_rate'",
        ),
        ({"data": {"dataset_dir": "/etc"}}, ["data", "dataset_dir"], "outside the allowed roots"),
        ({"data": {"dataset_dir": "relative/dir"}}, ["data", "dataset_dir"], "absolute path"),
        ({"launch": {"deepspeed": "zero9"}}, ["launch", "deepspeed"], "'zero2'"),
        ({"training": {"save_steps": "often"}}, ["training", "save_steps"], "e.g. 200"),
        ({"method": {"trainable": "q_proj, v_proj"}}, ["method", "trainable"], "Comma-separated"),
    ],
)
def test_bad_config_names_the_field(api: Api, config: dict, loc: list[str], words: str) -> None:
    panel, _ = api
    with panel.client() as c:
        errors = _errors(_post(c, {"preset": "tiny-demo", "config": config}))
    assert errors[0]["loc"] == ["body", "config", *loc]
    assert words in errors[0]["msg"]


def test_missing_dataset_and_symlink_escape(api: Api, tmp_path: Path) -> None:
    panel, assets = api
    escape = assets["root"] / "escape"
    if not escape.exists():
        escape.symlink_to(tmp_path)  # inside the root by name, outside once resolved
    with panel.client() as c:
        missing = _errors(
            _post(
                c,
                {
                    "preset": "tiny-demo",
                    "config": {"data": {"dataset_dir": str(assets["root"] / "nope")}},
                },
            )
        )
        escaped = _errors(
            _post(c, {"preset": "tiny-demo", "config": {"data": {"dataset_dir": str(escape)}}})
        )
        dotdot = _errors(
            _post(
                c,
                {
                    "preset": "tiny-demo",
                    "config": {"data": {"dataset_dir": str(assets["corpus"]) + "/../../.."}},
                },
            )
        )
    assert missing[0]["loc"] == ["body", "config", "data", "dataset_dir"]
    assert "does not exist" in missing[0]["msg"] and str(assets["root"]) in missing[0]["msg"]
    assert "outside the allowed roots" in escaped[0]["msg"]
    assert "outside the allowed roots" in dotdot[0]["msg"]


def test_unknown_preset_lists_presets(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        errors = _errors(_post(c, {"preset": "nope"}))
    assert errors[0]["loc"] == ["body", "preset"]
    assert all(p in errors[0]["msg"] for p in ("seed-lora", "full", "tiny-demo"))


def test_malformed_and_unknown_body(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        broken = c.post(
            "/api/runs", content=b'{"preset": ', headers={"content-type": "application/json"}
        )
        extra = _post(c, {"preset": "tiny-demo", "colour": "red"})
        not_dict = _post(c, {"preset": "tiny-demo", "config": [1, 2]})
    assert "not valid JSON" in _errors(broken)[0]["msg"]
    assert _errors(extra)[0]["loc"] == ["body", "colour"]
    assert _errors(not_dict)[0]["loc"] == ["body", "config"]


def test_preview_stores_nothing(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        before = c.get("/api/runs").json()["total"]
        r = c.post("/api/runs/preview", json={"preset": "tiny-demo"})
        after = c.get("/api/runs").json()["total"]
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["argv"][1:3] == ["-m", "torch.distributed.run"]
    assert body["command"].startswith("torchrun ")
    assert f"--dataset_dir={panel.data_dir / 'demo' / 'corpus'}" in body["argv"]
    assert before == after


def test_list_get_filter_and_command(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        first = create_run(c)
        second = c.post("/api/runs", json={"preset": "tiny-demo", "name": "needle run"}).json()
        listing = c.get("/api/runs", params={"limit": 2}).json()
        found = c.get("/api/runs", params={"q": "NEEDLE"}).json()
        queued = c.get("/api/runs", params={"status": ["queued", "running"]}).json()
        cmd = c.get(f"/api/runs/{first['id']}/command").json()
        missing = c.get("/api/runs/r-nope")
    assert listing["items"][0]["id"] == second["id"]  # newest first
    assert found["total"] == 1 and found["items"][0]["id"] == second["id"]
    assert all(r["status"] in ("queued", "running") for r in queued["items"])
    out = str(panel.data_dir / "runs" / first["id"] / "output")
    assert cmd["argv"][cmd["argv"].index("--output_dir") + 1] == out
    assert cmd["argv"][cmd["argv"].index("--data_cache_dir") + 1] == str(panel.data_dir / "cache")
    assert missing.status_code == 404 and "r-nope" in missing.json()["detail"]


def test_create_sends_the_celery_message(api: Api) -> None:
    panel, _ = api
    queue_dir = panel.data_dir / "broker" / "queue"
    with panel.client() as c:
        run = create_run(c)
    messages = [json.loads(p.read_text()) for p in queue_dir.iterdir()]
    ours = [m for m in messages if json.loads(base64.b64decode(m["body"]))[0] == [run["id"], 1]]
    assert len(ours) == 1
    assert ours[0]["headers"]["task"] == "worker.tasks.run_training"
    assert ours[0]["properties"]["delivery_info"]["routing_key"] == panel.env["CPT_QUEUE"]


def test_cancel_clone_delete(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        run = create_run(c)
        cancelled = c.post(f"/api/runs/{run['id']}/cancel")
        again = c.post(f"/api/runs/{run['id']}/cancel")
        resume = c.post(f"/api/runs/{run['id']}/resume", json={"checkpoint": "last"})
        clone = c.post(f"/api/runs/{run['id']}/clone", json={"config": {"training": {"seed": 7}}})
        active_delete = c.delete(f"/api/runs/{clone.json()['id']}")
        deleted = c.delete(f"/api/runs/{run['id']}")
        gone = c.get(f"/api/runs/{run['id']}")
    assert cancelled.json()["status"] == "cancelled"
    assert (
        again.status_code == 409
        and again.json()["detail"] == "cannot cancel a run that is cancelled"
    )
    assert resume.status_code == 409 and "no checkpoint" in resume.json()["detail"]
    assert clone.status_code == 201
    assert clone.json()["id"] != run["id"] and clone.json()["config"]["training"]["seed"] == 7
    assert clone.json()["config"]["training"]["max_steps"] == 40
    assert active_delete.status_code == 409 and "cancel it first" in active_delete.json()["detail"]
    assert deleted.status_code == 204 and gone.status_code == 404


def test_meta_endpoints(api: Api) -> None:
    panel, assets = api
    with panel.client() as c:
        schema = c.get("/api/schema/run-config").json()
        presets = c.get("/api/presets").json()
        models = c.get("/api/files", params={"kind": "model"}).json()
        toks = c.get("/api/files", params={"kind": "tokenizer"}).json()
        data = c.get("/api/files", params={"kind": "dataset"}).json()
        bad = c.get("/api/files", params={"kind": "weights"})
    assert set(schema["properties"]) == {"model", "data", "method", "training", "launch"}
    assert [p["name"] for p in presets] == ["seed-lora", "full", "tiny-demo"]
    assert presets[0]["config"]["training"]["precision"] == "fp16"
    assert presets[0]["config"]["training"]["logging_steps"] == 10
    assert str(assets["model"]) in [m["path"] for m in models]
    assert str(assets["tokenizer"]) in [t["path"] for t in toks]
    assert str(assets["corpus"]) in [d["path"] for d in data]
    assert str(assets["model"]) not in [d["path"] for d in data]
    assert str(assets["tokenizer"]) not in [d["path"] for d in data]
    assert bad.status_code == 422


def test_staged_runs_are_checked_at_their_field(api: Api) -> None:
    """training.stages: the steps make max_steps, and a stage of new embedding rows needs an
    extended tokenizer (a 422 that names the stage's field, nothing stored)."""
    panel, _ = api
    stages = [{"method": "new_embeddings", "max_steps": 5, "learning_rate": 1e-3}, {"max_steps": 7}]
    with panel.client() as c:
        before = c.get("/api/runs").json()["total"]
        ok = c.post(
            "/api/runs/preview",
            json={
                "preset": "tiny-demo",
                "config": {"training": {"max_steps": -1, "stages": stages}},
            },
        )
        base_tok = _post(
            c,
            {
                "preset": "tiny-demo",
                "config": {
                    "model": {"tokenizer_name_or_path": None},
                    "training": {"max_steps": -1, "stages": stages},
                },
            },
        )
        wrong_total = _post(
            c, {"preset": "tiny-demo", "config": {"training": {"max_steps": 3, "stages": stages}}}
        )
        after = c.get("/api/runs").json()["total"]
    assert ok.status_code == 200, ok.text
    argv = ok.json()["argv"]
    assert "--max_steps=12" in argv
    flag = next(a for a in argv if a.startswith("--stages="))
    assert json.loads(flag.split("=", 1)[1])[0]["method"] == "new_embeddings"
    (err,) = _errors(base_tok)
    assert err["loc"] == ["body", "config", "training", "stages", 0, "method"], err
    assert "extended tokenizer" in err["msg"], err
    (err,) = _errors(wrong_total)
    assert err["loc"] == ["body", "config", "training", "max_steps"] and "12" in err["msg"], err
    assert before == after
