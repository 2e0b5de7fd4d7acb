"""The launch estimate against a real run: parameters exactly as ``pretrain.py``'s ``start`` event
reports them, and memory within 25 % of the training process's measured peak RSS on CPU.

The run is SmolLM2-135M, full weights, fp32, micro-batch 1 of 64 tokens: weights, gradients and
AdamW's states (16 bytes a parameter, ~2.2 GB) dominate, as on a GPU. The memory the estimate
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


def test_smollm2_full_memory_within_25_percent_of_peak_rss(
    smollm2: Path, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tiny_assets["corpus"] / "chatterbot_english.jsonl", data)
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(smollm2)},
            "data": {"dataset_dir": str(data), "block_size": 64,
                     "validation_split_percentage": 0.0},
            "method": {"finetuning_type": "full"},
            "training": {"max_steps": 3, "per_device_train_batch_size": 1,
                         "gradient_accumulation_steps": 1, "precision": "fp32",
                         "gradient_checkpointing": False, "eval_at_start": False,
                         "logging_steps": 1, "save_steps": 1000},
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
    print(f"estimate {est.memory.total / 2**30:.2f} GiB, measured {measured / 2**30:.2f} GiB "
          f"(peak {peak / 2**30:.2f} - baseline {baseline / 2**30:.2f}), ratio {ratio:.2f}")  # fmt: skip
    assert 0.75 <= ratio <= 1.25, (est.memory, measured)
