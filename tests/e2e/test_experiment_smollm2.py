"""The seed's question on a real model: SmolLM2-135M, {base, extended tokenizer} x {LoRA, full},
Chinese (Debian ``fortunes-zh``) as the target set and English (UDHR) as the retain set, through
the real API, a real worker and torchrun on the CPU.

Bounded for a 2-core box: 4 steps per run, evaluations at step 0 and at the end only, 120 + 400
characters. The verdict's every number is checked against what the run stored: the metrics
store's series (``GET /runs/{id}/metrics``) and the evaluation events themselves. The verdict
is printed as Markdown (run with ``-s`` to read it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import worker_log_tail
from tests.support.panel import ASSET_CACHE, Panel, start_panel
from tests.training.test_eval_real_model import (  # noqa: F401 (fixtures)
    EN_EVAL_CHARS,
    ZH_EVAL_CHARS,
    corpus,
    extended,
    smollm2,
)

# Four real trainings of a 135M model on a shared CPU: well over the default 10 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def smol_panel(
    tmp_path_factory: pytest.TempPathFactory,
    corpus: dict[str, Path],  # noqa: F811 (the imported fixture)
    smollm2: Path,  # noqa: F811
) -> Iterator[Panel]:
    data_dir = tmp_path_factory.mktemp("smol-panel")
    panel = start_panel(data_dir, broker_url=None, allowed_roots=[ASSET_CACHE, corpus["root"]])
    try:
        panel.start_worker(concurrency=1)
        yield panel
    finally:
        panel.stop()


def _spec(model: Path, ext: Path, texts: dict[str, Path]) -> dict[str, Any]:
    base_tok, ext_tok = str(model), str(ext)
    return {
        "name": "SmolLM2 tokenizer x method",
        "base": {
            "model": {"model_name_or_path": str(model), "torch_dtype": "float32"},
            "data": {
                "dataset_dir": str(texts["train"].parent),
                "block_size": 128,
                "validation_split_percentage": 0,
                "eval_sets": {
                    "zh": {"path": str(texts["zh"]), "max_characters": ZH_EVAL_CHARS},
                    "en": {"path": str(texts["en"]), "max_characters": EN_EVAL_CHARS},
                },
            },
            "method": {
                "trainable": "q_proj,v_proj",
                "modules_to_save": "",
                "lora_rank": 8,
                "lora_alpha": 16,
                "lora_dropout": 0.0,
            },
            "training": {
                "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 1,
                "warmup_ratio": 0.1,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "logging_steps": 2,
                "save_steps": 1000,
                "eval_prompts": {"zh": ["人生"], "en": ["The weather today"]},
                "sample_max_new_tokens": 6,
                "seed": 3,
            },
            "launch": {"deepspeed": "none", "nproc_per_node": 1},
        },
        # Listed combinations: full weights get a full-weight learning rate.
        "combinations": [
            {
                "model.tokenizer_name_or_path": tok,
                "method.finetuning_type": method,
                "training.learning_rate": 2e-3 if method == "lora" else 1e-4,
            }
            for tok in (base_tok, ext_tok)
            for method in ("lora", "full")
        ],
        "target": "zh",
        "retain": ["en"],
        "forgetting_cap": 0.05,
        "budget": {"steps": 4},
    }


def test_smollm2_verdict_equals_each_runs_stored_metrics(
    smol_panel: Panel,
    smollm2: Path,  # noqa: F811 (the imported fixtures)
    extended: Path,  # noqa: F811
    corpus: dict[str, Path],  # noqa: F811
) -> None:
    panel = smol_panel
    with panel.client() as c:
        r = c.post(
            "/api/experiments", params={"launch": "true"}, json=_spec(smollm2, extended, corpus)
        )
        assert r.status_code == 201, r.text
        exp_id = r.json()["id"]
        deadline = time.monotonic() + 3000
        while c.get(f"/api/experiments/{exp_id}").json()["status"] == "running":
            assert time.monotonic() < deadline, worker_log_tail(panel)
            time.sleep(3)
        exp = c.get(f"/api/experiments/{exp_id}").json()
        v = c.get(f"/api/experiments/{exp_id}/verdict").json()
        md = c.get(f"/api/experiments/{exp_id}/verdict/export", params={"format": "md"}).text
        stored = {}
        for row in v["rows"]:
            rid = row["run_id"]
            keys = "eval_zh_bits_per_char,eval_en_bits_per_char"
            stored[rid] = {
                "metrics": c.get(
                    f"/api/runs/{rid}/metrics", params={"keys": keys, "max_points": 100000}
                ).json()["series"],
                "evals": c.get(f"/api/runs/{rid}/events", params={"kind": "eval"}).json(),
                "start": c.get(f"/api/runs/{rid}/events", params={"kind": "start"}).json()[-1],
                "run": c.get(f"/api/runs/{rid}").json(),
            }
    print("\n" + md)
    assert exp["status"] == "finished", (exp, worker_log_tail(panel))
    assert len(v["rows"]) == 4 and v["warnings"] == []
    for row in v["rows"]:
        s = stored[row["run_id"]]
        run = s["run"]
        assert row["tokens_seen"] == run["tokens_seen"] and row["tokens_seen"] == 4 * 4 * 128
        assert row["trainable_params"] == s["start"]["data"]["trainable_params"]
        assert row["wall_seconds"] == pytest.approx(run["duration_seconds"], abs=1e-6)
        for name in ("zh", "en"):
            series = s["metrics"][f"eval_{name}_bits_per_char"]
            evals = [e for e in s["evals"] if f"eval_{name}_bits_per_char" in e["data"]]
            fig = row["sets"][name]
            assert (
                fig["start"] == series["value"][0] == evals[0]["data"][f"eval_{name}_bits_per_char"]
            )
            assert (
                fig["end"] == series["value"][-1] == evals[-1]["data"][f"eval_{name}_bits_per_char"]
            )
            assert fig["start_step"] == 0 and fig["end_step"] == 4
            assert fig["change"] == fig["end"] - fig["start"]
        assert row["forgetting"]["en"] == row["sets"]["en"]["change"]
        assert row["within_cap"] == (row["forgetting"]["en"] <= 0.05)
        assert row["curve"]["value"] == s["metrics"]["eval_zh_bits_per_char"]["value"]
    within = sorted((r for r in v["rows"] if r["within_cap"]), key=lambda r: r["sets"]["zh"]["end"])
    if within:
        assert v["winner"]["run_id"] == within[0]["run_id"]
        if len(within) > 1:
            assert (
                v["winner"]["margin"]
                == within[1]["sets"]["zh"]["end"] - within[0]["sets"]["zh"]["end"]
            )
    else:
        assert v["winner"] is None and v["no_winner"] == "no run is within the cap"
    # Samples side by side: the same prompts, one text per run.
    assert v["samples"]["prompts"] and all(len(p["texts"]) == 4 for p in v["samples"]["prompts"])
