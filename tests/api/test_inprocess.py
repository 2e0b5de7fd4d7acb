"""The in-process tier: the real app through FastAPI's ``TestClient`` (no server, no worker).

Fast enough for ``make test-fast``: routes, auth, validation and the worker protocol, against a
real SQLite database in a temp dir and the embedded broker.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import app_settings
from backend.main import create_app
from cpt_contract.protocol import LEASE_HEADER, ClaimOut, EventsOut
from cpt_contract.settings import Settings
from cpt_contract.statuses import RunStatus
from tests.support.api import make_assets, make_demo

TOKEN, WORKER_TOKEN = "inprocess-token-0123456789", "inprocess-worker-0123456789"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    assets = make_assets(tmp_path / "assets")
    settings = Settings(
        data_dir=tmp_path / "data",
        api_token=TOKEN,
        worker_token=WORKER_TOKEN,
        allowed_roots=[assets["root"]],
        build_demo=False,
    )
    make_demo(settings.resolved_data_dir)
    app = create_app(settings)
    app.dependency_overrides[app_settings] = lambda: settings
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def test_health_needs_no_token_and_the_rest_does(client: TestClient) -> None:
    assert client.get("/api/health", headers={"Authorization": ""}).status_code == 200
    assert client.get("/api/runs", headers={"Authorization": ""}).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_bad_config_is_a_422_at_its_field(client: TestClient) -> None:
    r = client.post(
        "/api/runs/preview", json={"preset": "tiny-demo", "config": {"training": {"lora": 1}}}
    )
    assert r.status_code == 422
    assert any(e["loc"][-2:] == ["training", "lora"] for e in r.json()["detail"]), r.text


def test_a_run_goes_through_the_worker_protocol(client: TestClient) -> None:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    assert run["status"] == RunStatus.queued
    worker = {"Authorization": f"Bearer {WORKER_TOKEN}"}
    # The user's token is not a worker token.
    claim_path = f"/api/internal/runs/{run['id']}/claim"
    assert client.post(claim_path, json={"attempt": 1, "worker": "w"}).status_code == 401
    r = client.post(claim_path, json={"attempt": 1, "worker": "w"}, headers=worker)
    claim = ClaimOut.model_validate(r.json())
    assert claim.attempt == 1 and claim.resume_from is None
    worker = {**worker, LEASE_HEADER: claim.lease}  # this run's reports carry the claim's lease
    # A second claim of the same attempt is refused: a repeated message is harmless.
    assert (
        client.post(claim_path, json={"attempt": 1, "worker": "w"}, headers=worker).status_code
        == 409
    )
    status = {"attempt": 1, "status": "running", "pid": 1234}
    r = client.post(f"/api/internal/runs/{run['id']}/status", json=status, headers=worker)
    assert r.status_code == 200, r.text
    events = [
        {"seq": i, "kind": "log", "step": i, "time": 1.0 + i, "loss": 5.0 - i} for i in range(1, 4)
    ]
    body = {"attempt": 1, "events": events}
    path = f"/api/internal/runs/{run['id']}/events"
    assert (
        EventsOut.model_validate(client.post(path, json=body, headers=worker).json()).accepted == 3
    )
    assert (
        EventsOut.model_validate(client.post(path, json=body, headers=worker).json()).accepted == 0
    )
    got = client.get(f"/api/runs/{run['id']}").json()
    assert got["status"] == RunStatus.running and got["step"] == 3 and got["loss"] == 2.0


def test_jobs_validate_queue_claim_log_and_finish(client: TestClient, tmp_path: Path) -> None:
    corpus = tmp_path / "assets" / "corpus"
    bad = client.post("/api/jobs", json={"kind": "tokenizer", "params": {"base": "/etc"}})
    assert bad.status_code == 422
    locs = [e["loc"] for e in bad.json()["detail"]]
    assert ["body", "params", "corpus"] in locs, locs
    outside = client.post(
        "/api/jobs",
        json={"kind": "scan", "params": {"paths": [str(corpus), "/etc"]}},
    )
    assert outside.status_code == 422
    assert outside.json()["detail"][0]["loc"] == ["body", "params", "paths", 1]
    unknown = client.post("/api/jobs", json={"kind": "nope", "params": {}})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "kind"]

    job = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(corpus)]}})
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    assert job.json()["status"] == "queued" and job.json()["queue_position"] == 1
    worker = {"Authorization": f"Bearer {WORKER_TOKEN}"}
    claim = client.post(f"/api/internal/jobs/{job_id}/claim", json={"worker": "w"}, headers=worker)
    assert claim.status_code == 200 and claim.json()["kind"] == "scan", claim.text
    again = client.post(f"/api/internal/jobs/{job_id}/claim", json={"worker": "w"}, headers=worker)
    assert again.status_code == 409
    log_path = f"/api/internal/jobs/{job_id}/log"
    # The worker token alone may not report on a job: the claim's lease is needed.
    assert client.post(log_path, json={"offset": 0, "text": "x"}, headers=worker).status_code == 403
    worker = {**worker, LEASE_HEADER: claim.json()["lease"]}
    first = client.post(log_path, json={"offset": 0, "text": "ಕನ್ನಡ\n"}, headers=worker).json()
    size = len("ಕನ್ನಡ\n".encode())
    assert first["accepted_until"] == size
    # A resent chunk is acknowledged, not stored twice.
    resent = client.post(log_path, json={"offset": 0, "text": "ಕನ್ನಡ\n"}, headers=worker).json()
    assert resent["accepted_until"] == size
    assert client.get(f"/api/jobs/{job_id}/log").json()["text"] == "ಕನ್ನಡ\n"
    cancel = client.post(f"/api/jobs/{job_id}/cancel")
    assert cancel.json()["status"] == "cancelling"
    answer = client.post(log_path, json={"offset": size, "text": "x\n"}, headers=worker).json()
    assert answer["cancel_requested"] is True
    done = client.post(
        f"/api/internal/jobs/{job_id}/status",
        json={"status": "cancelled", "reason": "cancelled on request"},
        headers=worker,
    )
    assert done.status_code == 200
    got = client.get(f"/api/jobs/{job_id}").json()
    assert got["status"] == "cancelled" and got["finished_at"] and got["queue_position"] is None
    assert [j["id"] for j in client.get("/api/jobs", params={"kind": "scan"}).json()] == [job_id]


def test_preview_counts_the_embedding_rows_a_tokenizer_adds(
    client: TestClient, tmp_path: Path
) -> None:
    import json

    root = tmp_path / "assets"
    model, tok = root / "models" / "tiny-llama", root / "tok" / "wide"
    tok.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 10}))
    vocab = {f"t{i}": i for i in range(11)}
    added = [{"id": 11, "content": "<new>"}]
    (tok / "tokenizer.json").write_text(
        json.dumps({"model": {"vocab": vocab}, "added_tokens": added})
    )
    body = {
        "preset": "tiny-demo",
        "config": {
            "model": {"model_name_or_path": str(model), "tokenizer_name_or_path": str(tok)},
            "data": {"dataset_dir": str(root / "corpus")},
        },
    }
    r = client.post("/api/runs/preview", json=body)
    assert r.status_code == 200, r.text
    vocab_est = r.json()["estimates"]["vocab"]
    assert vocab_est["model_vocab"] == 10 and vocab_est["tokenizer_vocab"] == 12
    assert vocab_est["new_rows"] == 2
    # No scan of this dataset yet: no token count is invented.
    assert r.json()["estimates"]["data"]["tokens"] is None
    # A config without the decoder's sizes: no parameter count is invented either.
    model_est = r.json()["estimates"]["model"]
    assert model_est["params"] is None and "lacks the decoder's sizes" in model_est["note"]


def test_eval_events_give_per_set_series_samples_by_step_and_warnings(
    client: TestClient,
) -> None:
    """Per-set bits/char are metric series; samples are stored once (by seq) and read by step."""
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    worker = {"Authorization": f"Bearer {WORKER_TOKEN}"}
    claim = f"/api/internal/runs/{run['id']}/claim"
    claimed = client.post(claim, json={"attempt": 1, "worker": "w"}, headers=worker)
    assert claimed.status_code == 200
    worker = {**worker, LEASE_HEADER: claimed.json()["lease"]}

    def ev(seq: int, kind: str, step: int, **data: object) -> dict[str, object]:
        return {"seq": seq, "kind": kind, "step": step, "time": float(seq), **data}

    events = [
        ev(1, "start", 0, eval_sets=[{"name": "en", "role": "retain"}]),
        ev(2, "eval", 0, eval_loss=3.0, perplexity=20.1, eval_en_bits_per_char=1.5),
        ev(3, "sample", 0, set="en", prompt="The", text=" cat", mode="greedy"),
        ev(4, "sample", 0, set="en", prompt="The", text=" dog", mode="sampled"),
        ev(5, "eval", 4, eval_loss=2.9, perplexity=18.2, eval_en_bits_per_char=1.52),
        ev(6, "sample", 4, set="en", prompt="The", text=" sun", mode="greedy"),
        ev(7, "warning", 4, code="eval_budget", message="evaluation at step 4 took 9 s"),
    ]
    path = f"/api/internal/runs/{run['id']}/events"
    for _ in range(2):  # a re-sent batch stores nothing twice
        r = client.post(path, json={"attempt": 1, "events": events}, headers=worker)
        assert r.status_code == 200, r.text
    series = client.get(f"/api/runs/{run['id']}/metrics?keys=eval_en_bits_per_char").json()
    assert series["series"]["eval_en_bits_per_char"]["value"] == [1.5, 1.52]
    got = client.get(f"/api/runs/{run['id']}/samples").json()
    assert got["steps"] == [0, 4] and [s["text"] for s in got["samples"]] == [
        " cat",
        " dog",
        " sun",
    ]
    one = client.get(f"/api/runs/{run['id']}/samples?step=4").json()
    assert [(s["mode"], s["text"]) for s in one["samples"]] == [("greedy", " sun")]
    warnings = client.get(f"/api/runs/{run['id']}/events?kind=warning").json()
    assert [w["data"]["code"] for w in warnings] == ["eval_budget"]
    assert client.get(f"/api/runs/{run['id']}/events?kind=nope").status_code == 422


def test_eval_set_paths_are_checked_under_the_allowed_roots(
    client: TestClient, tmp_path: Path
) -> None:
    config = {"data": {"eval_sets": {"en": "/etc/passwd", "kn": {"path": "/etc/hosts"}}}}
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 422, r.text
    locs = [tuple(e["loc"][-3:]) for e in r.json()["detail"]]
    assert ("eval_sets", "en", "path") in locs and ("eval_sets", "kn", "path") in locs, locs
    role = {"data": {"eval_sets": {"en": {"path": "/x", "role": "keep"}}}}
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": role})
    assert r.status_code == 422
    assert [e["loc"][-4:] for e in r.json()["detail"]] == [["data", "eval_sets", "en", "role"]]
    corpus = sorted(p for p in (tmp_path / "assets" / "corpus").iterdir() if p.is_file())
    good = {"data": {"eval_sets": {"en": str(corpus[0]), "kn": {"path": str(corpus[-1])}}}}
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": good})
    assert r.status_code == 200, r.text
    assert any(a.startswith("--eval_sets=") for a in r.json()["argv"])
    bad = {"data": {"eval_sets": {"a b": "/x"}}}
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": bad})
    assert r.status_code == 422 and "eval_sets" in r.text


def test_preview_estimates_params_and_memory_per_device_by_zero_stage(
    client: TestClient, tmp_path: Path
) -> None:
    """A Llama-shaped config.json (no weights): parameters, tokens per step and memory per
    device, split over the data-parallel ranks by the ZeRO stage and moved off by offload."""
    import json

    model = tmp_path / "assets" / "models" / "llama-cfg"
    model.mkdir(parents=True, exist_ok=True)
    sizes = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
             "tie_word_embeddings": False, "max_position_embeddings": 256}  # fmt: skip
    (model / "config.json").write_text(json.dumps({"model_type": "llama", **sizes}))
    (model / "model.safetensors").write_bytes(b"")  # never read: the counts need no weights

    def preview(
        method: dict[str, object], training: dict[str, object], launch: dict[str, object]
    ) -> dict[str, Any]:
        body = {
            "preset": "tiny-demo",
            "config": {
                "model": {"model_name_or_path": str(model), "tokenizer_name_or_path": None},
                "data": {"dataset_dir": str(tmp_path / "assets" / "corpus"), "block_size": 32},
                "method": method,
                "training": {"precision": "bf16", "per_device_train_batch_size": 2,
                             "gradient_accumulation_steps": 3, "max_steps": 10, **training},
                "launch": {"queue": "nobody", **launch},
            },
        }  # fmt: skip
        r = client.post("/api/runs/preview", json=body)
        assert r.status_code == 200, r.text
        return r.json()["estimates"]["model"]

    # Per layer 2*64*64 (q, o) + 2*64*32 (k, v) + 3*64*128 + 2*64 norms; embeddings + head.
    base = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 128) + 64 + 2 * 100 * 64
    full = preview({"finetuning_type": "full"}, {}, {"deepspeed": "none"})
    assert full["params"]["total"] == full["params"]["trainable"] == base
    assert full["tokens_per_step"] == 32 * 2 * 3
    m = full["memory"]
    assert m["weight_dtype"] == "float32" and m["weights"] == 4 * base
    assert m["gradients"] == 4 * base and m["optimizer"] == 8 * base  # AdamW in fp32
    assert m["total"] == m["weights"] + m["gradients"] + m["optimizer"] + m["activations"]
    # Gradient checkpointing keeps only layer inputs: fewer bytes than without.
    assert m["activations_with_checkpointing"] < m["activations_without_checkpointing"]

    lora = preview({"finetuning_type": "lora", "trainable": "q_proj,v_proj", "lora_rank": 4,
                    "modules_to_save": "lm_head"}, {}, {"deepspeed": "none"})  # fmt: skip
    adapters = 2 * 4 * ((64 + 64) + (64 + 32))
    assert lora["params"]["lora"] == adapters and lora["params"]["modules_to_save"] == 100 * 64
    assert lora["params"]["trainable"] == adapters + 100 * 64
    assert lora["params"]["total"] == base + adapters + 100 * 64
    # modules_to_save switched off: the adapters alone are trained.
    bare = preview({"finetuning_type": "lora", "trainable": "q_proj,v_proj", "lora_rank": 4,
                    "modules_to_save": ""}, {}, {"deepspeed": "none"})  # fmt: skip
    assert bare["params"]["modules_to_save"] == 0 and bare["params"]["trainable"] == adapters

    # DeepSpeed bf16 over 4 ranks: 16-bit weights, fp32 master + 2 states = 12 B per parameter.
    four = {"nproc_per_node": 4}
    z2 = preview({"finetuning_type": "full"}, {}, {"deepspeed": "zero2", **four})["memory"]
    assert (z2["world_size"], z2["zero_stage"], z2["weight_dtype"]) == (4, 2, "bfloat16")
    assert z2["weights"] == 2 * base and z2["gradients"] == 2 * base // 4
    assert z2["optimizer"] == 12 * base // 4
    z3 = preview({"finetuning_type": "full"}, {}, {"deepspeed": "zero3", **four})["memory"]
    assert z3["weights"] == 2 * base // 4
    z3o = preview({"finetuning_type": "full"}, {}, {"deepspeed": "zero3_offload", **four})
    assert z3o["memory"]["weights"] == z3o["memory"]["optimizer"] == 0
    assert z3o["memory"]["offloaded"] == 2 * base // 4 + 12 * base // 4
    z2o = preview({"finetuning_type": "full"}, {}, {"deepspeed": "zero2_offload"})["memory"]
    assert z2o["optimizer"] == 0 and z2o["offloaded"] == 12 * base


def test_startup_objects_are_frozen_out_of_the_collector(client: TestClient) -> None:
    # The app's modules (~120k objects) sit in the permanent generation: a full collection
    # does not scan them on every chart query (it took 70-80 ms on the 2-core box).
    assert gc.get_freeze_count() > 50_000
