"""The launch preview's evaluation time: scoring and sampling apart, from a measured run of the
same model on the queue when there is one, else from the model's size and the budget; a
sampling budget longer than the scoring is flagged in the estimate and the warnings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.core.db import get_engine
from backend.models import Run, RunEvent, utcnow
from backend.services import eval_time
from cpt_contract.statuses import RunStatus
from tests.support.api import client_for, make_assets, settings_for

SIZES = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
         "tie_word_embeddings": False, "max_position_embeddings": 256}  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Any, Path]]:
    assets = make_assets(tmp_path / "assets")
    settings = settings_for(tmp_path, assets["root"])
    model = tmp_path / "assets" / "models" / "llama-cfg"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama", **SIZES}))
    (model / "model.safetensors").write_bytes(b"")  # never read: the estimate needs no weights
    with client_for(settings) as client:
        yield client, settings, model


def _config(model: Path, corpus: Path, prompts: int, new_tokens: int) -> dict[str, Any]:
    held = corpus / "held.txt"
    held.write_text("Some held-out text.\n" * 50, encoding="utf-8")
    return {
        "model": {"model_name_or_path": str(model), "tokenizer_name_or_path": None},
        "data": {"dataset_dir": str(corpus), "block_size": 32, "validation_split_percentage": 0,
                 "eval_sets": {"en": {"path": str(held), "max_characters": 20_000}}},
        "training": {"max_steps": 10, "eval_steps": 5, "eval_at_start": True,
                     "eval_prompts": {"en": [f"Prompt {i}" for i in range(prompts)]} if prompts
                     else None, "sample_max_new_tokens": new_tokens},
        "launch": {"queue": "nobody"},
    }  # fmt: skip


def _preview(client: TestClient, config: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_without_a_measured_run_the_model_size_and_budget_give_the_time(
    setup: tuple[TestClient, Any, Path], tmp_path: Path
) -> None:
    client, _, model = setup
    corpus = tmp_path / "assets" / "corpus"
    answer = _preview(client, _config(model, corpus, prompts=8, new_tokens=200))
    e = answer["estimates"]["evaluation"]
    params = answer["estimates"]["model"]["params"]["total"]  # the preset's LoRA included
    assert answer["estimates"]["model"]["memory"]["weight_dtype"] == "float32"
    assert e["evaluations"] == 3 and e["characters"] == 20_000  # step 0, 5, 10
    assert (e["scoring_basis"], e["sampling_basis"]) == ("model_size", "model_size")
    assert e["samples"] == 16 and e["sample_tokens"] == 16 * 200
    # No live worker: the queue is not known to be CPU-only, the GPU figures apply.
    flops = eval_time.ASSUMED_FLOPS["gpu"]
    scoring = 2 * params * 20_000 * eval_time.ASSUMED_TOKENS_PER_CHAR / flops
    assert e["scoring_seconds"] == pytest.approx(scoring)
    per_token = eval_time.decode_seconds_per_token(params, 2, 4, flops, "gpu")
    assert e["sampling_seconds"] == pytest.approx(per_token * 16 * 200)
    assert e["seconds_each"] == pytest.approx(scoring + per_token * 16 * 200)
    # A tiny model scores 20k characters in no time; 3,200 generated tokens take seconds.
    assert e["sampling_exceeds_scoring"] is True
    assert any(
        "sampling" in w and "training.sample_max_new_tokens" in w for w in answer["warnings"]
    ), answer["warnings"]

    quiet = _preview(client, _config(model, corpus, prompts=0, new_tokens=200))
    e = quiet["estimates"]["evaluation"]
    assert e["samples"] == 0 and e["sampling_seconds"] == 0
    assert e["sampling_exceeds_scoring"] is False
    assert not any("sampling" in w for w in quiet["warnings"])


def test_a_measured_run_of_the_model_on_the_queue_scales_its_split(
    setup: tuple[TestClient, Any, Path], tmp_path: Path
) -> None:
    client, settings, model = setup
    corpus = tmp_path / "assets" / "corpus"
    config = _config(model, corpus, prompts=2, new_tokens=10)
    r = client.post("/api/runs", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    with Session(get_engine(settings)) as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.status, run.finished_at = RunStatus.succeeded, utcnow()
        run.eval_seconds, run.tokens_per_second = 12.0, 1000.0
        session.add(run)
        events = [
            ("start", {"eval_sets": [{"name": "en", "characters": 5_000}]}),
            ("eval", {"eval_loss": 2.0, "eval_score_seconds": 2.0, "eval_sample_seconds": 10.0,
                      "eval_sample_tokens": 40}),
        ]  # fmt: skip
        for seq, (kind, data) in enumerate(events, 1):
            session.add(RunEvent(run_id=run_id, attempt=1, seq=seq, kind=kind, data=data))
        session.commit()

    e = _preview(client, config)["estimates"]["evaluation"]
    assert (e["scoring_basis"], e["sampling_basis"]) == ("measured_eval", "measured_eval")
    assert e["measured_run"] == run_id and e["measured_characters"] == 5_000
    assert e["scoring_seconds"] == pytest.approx(2.0 * 20_000 / 5_000)  # 4x the characters
    assert e["sampling_seconds"] == pytest.approx(10.0 / 40 * 4 * 10)  # 0.25 s a token
    assert e["sampling_exceeds_scoring"] is True

    # An older run that did not split its evaluation: its training speed is the queue's speed.
    with Session(get_engine(settings)) as session:
        for ev in session.query(RunEvent).filter(RunEvent.kind == "eval"):  # type: ignore[attr-defined]
            ev.data = {"eval_loss": 2.0}
            session.add(ev)
        session.commit()
    answer = _preview(client, config)
    e = answer["estimates"]["evaluation"]
    assert (e["scoring_basis"], e["sampling_basis"]) == ("measured_training", "measured_training")
    # 6 FLOPs per parameter and token in training, 2 in a forward pass: a third of the time.
    assert e["scoring_seconds"] == pytest.approx(20_000 * 0.5 / (3 * 1000.0))
