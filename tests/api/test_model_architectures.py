"""An architecture the panel does not train is a 422 at the model field that names it, before
anything is queued; the supported ones pass and get a parameter estimate (their exactness is
``tests/training/test_architectures_estimate.py``'s). In-process (real app, real files)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from cpt_contract.architectures import ARCHITECTURES
from tests.api.test_inprocess import client as client
from tests.api.test_pickers import _assets_root

SIZES = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "vocab_size": 384}  # fmt: skip


def _model(root: Path, name: str, config: dict[str, object]) -> Path:
    path = root / "arch" / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"")
    return path


def _preview(client: TestClient, model: Path) -> dict[str, object]:
    body = {"preset": "tiny-demo", "config": {"model": {"model_name_or_path": str(model)}}}
    r = client.post("/api/runs/preview", json=body)
    return {"status": r.status_code, "body": r.json()}


def test_an_unsupported_architecture_is_a_422_naming_it(client: TestClient) -> None:
    root = _assets_root(client)
    runs_before = client.get("/api/runs").json()["total"]
    for name, config, words in (
        ("gpt2", {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "GPT2LMHeadModel"),
        ("gemma3-mm", {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text"}},
         "multimodal Gemma-3"),
    ):  # fmt: skip
        got = _preview(client, _model(root, name, config))
        assert got["status"] == 422, got
        (err,) = got["body"]["detail"]  # type: ignore[index]
        assert err["loc"] == ["body", "config", "model", "model_name_or_path"], err
        assert err["type"] == "unsupported_architecture" and words in err["msg"], err
        assert "Qwen3" in err["msg"] and "Gemma-2" in err["msg"], err
        model = {"model_name_or_path": str(root / "arch" / name)}
        r = client.post("/api/runs", json={"preset": "tiny-demo", "config": {"model": model}})
        assert r.status_code == 422, r.text
    assert client.get("/api/runs").json()["total"] == runs_before  # nothing queued


def test_every_supported_architecture_gets_an_estimate(client: TestClient) -> None:
    root = _assets_root(client)
    for model_type in ARCHITECTURES:
        got = _preview(client, _model(root, model_type, {"model_type": model_type, **SIZES}))
        assert got["status"] == 200, got
        model = got["body"]["estimates"]["model"]  # type: ignore[index]
        assert model["params"]["total"] > 0 and model["note"] is None, (model_type, model)
