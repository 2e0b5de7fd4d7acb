"""The launch estimate against a real run: parameters exactly as ``pretrain.py``'s ``start`` event
reports them, and memory within 25 % of the training process's measured peak RSS on CPU.

Two SmolLM2-135M runs in fp32: full weights with micro-batch 1 of 64 tokens, where weights,
gradients and AdamW's states (16 bytes a parameter, ~2.1 GiB) dominate as on a GPU; and LoRA with
8 x 256 tokens and gradient checkpointing, where activations and logits dominate. The memory the estimate
covers is the peak RSS of the process tree minus its RSS when the ``loading_model`` phase event
appears: by then Python, torch, transformers, the tokenizer and the tokenized data are resident,
and the model is not yet loaded.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from backend.services.model_estimates import model_estimate
from cpt_contract.runconfig.argv import LaunchContext, pretrain_args
from cpt_contract.runconfig.schema import RunConfig
from tests.support.panel import ASSET_CACHE, ROOT
from tests.support.pretrain import SCRIPT, events_of, train_env
from worker import demo_assets


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def _phase_seen(out: Path, phase: str) -> bool:
    try:
        lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    # The last line may be half written: only whole lines count.
    for line in lines:
        with contextlib.suppress(ValueError):
            if json.loads(line).get("phase") == phase:
                return True
    return False


def _run_sampled(argv: list[str], out: Path, timeout: float) -> tuple[int, int]:
    """(RSS when the model starts loading, peak RSS), sampled every 20 ms."""
    popen = subprocess.Popen(
        [sys.executable, str(SCRIPT), *argv],
        cwd=ROOT,
        env=train_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    proc = psutil.Process(popen.pid)
    baseline, peak, deadline = 0, 0, time.monotonic() + timeout
    try:
        while popen.poll() is None and time.monotonic() < deadline:
            rss = _tree_rss(proc)
            if not baseline and _phase_seen(out, "loading_model"):
                baseline = rss
            peak = max(peak, rss)
            time.sleep(0.02)
    finally:
        if popen.poll() is None:
            popen.kill()
        log = popen.communicate()[0]
    assert popen.returncode == 0, log.decode(errors="replace")[-4000:]
    return baseline, peak


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return demo_assets.ensure_smollm2(ASSET_CACHE)


#: (method, training) per case; both fp32 on CPU, no evaluation, no checkpoint saved.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # Weights, gradients and AdamW states (16 B a parameter) dominate, as on a GPU.
    "full-weights-dominate": (
        {"finetuning_type": "full"},
        {"max_steps": 3, "per_device_train_batch_size": 1, "gradient_checkpointing": False},
    ),
    # LoRA + a trained lm_head copy, 8 x 256 tokens with gradient checkpointing: the layer
    # inputs, one recomputed layer and the logits dominate.
    "lora-checkpointed-activations-dominate": (
        {"finetuning_type": "lora", "modules_to_save": "lm_head"},
        {"max_steps": 2, "per_device_train_batch_size": 8, "gradient_checkpointing": True},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_smollm2_memory_within_25_percent_of_peak_rss(
    case: str, smollm2: Path, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    method, training = CASES[case]
    block = 64 if training["per_device_train_batch_size"] == 1 else 256
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tiny_assets["corpus"] / "chatterbot_english.jsonl", data)
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(smollm2)},
            "data": {"dataset_dir": str(data), "block_size": block,
                     "validation_split_percentage": 0.0},
            "method": method,
            "training": {"gradient_accumulation_steps": 1, "precision": "fp32",
                         "eval_at_start": False, "logging_steps": 1, "save_steps": 1000,
                         **training},
            "launch": {"deepspeed": "none"},
        }
    )  # fmt: skip
    out = tmp_path / "out"
    ctx = LaunchContext(output_dir=str(out), data_cache_dir=str(tmp_path / "cache"), use_cpu=True)
    baseline, peak = _run_sampled(pretrain_args(config, ctx), out, timeout=240)
    start = next(e for e in events_of(out) if e["kind"] == "start")
    est = model_estimate(config, None)
    assert est.params is not None and est.memory is not None
    assert (est.params.total, est.params.trainable) == (
        start["total_params"],
        start["trainable_params"],
    )
    assert est.tokens_per_step == start["tokens_per_step"]
    assert baseline > 0, "no loading_model phase event was seen"
    measured = peak - baseline
    ratio = est.memory.total / measured
    gib = 2**30
    print(f"{case}: estimate {est.memory.total / gib:.2f} GiB (activations "
          f"{est.memory.activations / gib:.2f}), measured {measured / gib:.2f} GiB (peak "
          f"{peak / gib:.2f} - baseline {baseline / gib:.2f}), ratio {ratio:.2f}")  # fmt: skip
    assert 0.75 <= ratio <= 1.25, (est.memory, measured)
