"""The Models page's list (``GET /api/models``) describes each model from its files, and the
import job's parameters are 422s at their field. In-process (real app, real SQLite, real files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from safetensors.numpy import load_file

from tests.api.test_inprocess import client as client
from tests.api.test_pickers import _assets_root


def test_models_are_described_from_their_files(
    client: TestClient, tiny_assets: dict[str, Path]
) -> None:
    model_dir = _assets_root(client) / "real" / "tiny-llama"
    shutil.copytree(tiny_assets["model"], model_dir)
    rows = {m["path"]: m for m in client.get("/api/models").json()}
    tiny = rows[str(model_dir)]
    weights = load_file(str(model_dir / "model.safetensors"))
    assert tiny["params"] == sum(w.size for w in weights.values())
    assert tiny["dtypes"] == sorted(
        {"F32" if w.dtype.name == "float32" else w.dtype.name for w in weights.values()}
    )
    config = json.loads((model_dir / "config.json").read_text())
    assert tiny["vocab_size"] == config["vocab_size"]
    assert tiny["tied_embeddings"] is ("lm_head.weight" not in weights)
    assert tiny["architecture"] == config["architectures"][0]
    assert tiny["source"] == {"kind": "local"}
    assert tiny["size_bytes"] == sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    # A stand-in with an unreadable weights file: nothing is guessed.
    stand_in = next(m for p, m in rows.items() if p.endswith("demo/tiny-llama"))
    assert stand_in["params"] is None and stand_in["dtypes"] == []
    assert client.get("/api/models", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_import_parameters_are_checked_at_their_field(client: TestClient) -> None:
    root = _assets_root(client)
    inside = root / "m.gguf"
    inside.write_bytes(b"GGUF")
    cases = {
        "gguf": {"gguf": "/etc/passwd.gguf", "name": "x"},
        "name": {"gguf": str(inside), "name": "../up"},
    }
    for field, params in cases.items():
        r = client.post("/api/jobs", json={"kind": "import", "params": params})
        assert r.status_code == 422, r.text
        assert ["body", "params", field] in [e["loc"] for e in r.json()["detail"]], r.text
    r = client.post(
        "/api/jobs", json={"kind": "import", "params": {"gguf": str(root / "x.bin"), "name": "x"}}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "params", "gguf"]
    r = client.post(
        "/api/jobs", json={"kind": "import", "params": {"gguf": str(inside), "name": "ok"}}
    )
    assert r.status_code == 201, r.text
