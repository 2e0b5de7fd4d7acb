"""worker/pretrain.py under DeepSpeed on CPU: ZeRO-2 LoRA with 2 processes, ZeRO-2 and ZeRO-3 full.

Real torchrun (gloo) runs of the tiny Llama; DeepSpeed uses its cpu accelerator.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.support.panel import ROOT
from tests.support.pretrain import (
    DS_CONFIGS,
    assert_trained,
    events_of,
    output_of,
    run_pretrain,
    tiny_args,
    train_env,
)
from worker import pretrain
from worker.exit_codes import EXIT_BAD_INPUT

ABORT_MARKERS = ("terminate called", "Aborted", "core dumped")


def _no_abort(proc: subprocess.CompletedProcess[str]) -> None:
    text = output_of(proc)
    for marker in ABORT_MARKERS:
        assert marker not in text, text[-4000:]


@pytest.fixture(scope="session")
def zero2_lora_run(
    tiny_assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, data_cache: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("zero2-lora") / "out"
    args = tiny_args(
        tiny_assets,
        out,
        data_cache,
        deepspeed=DS_CONFIGS / "ds_zero2_no_offload.json",
        max_steps=16,
        logging_steps=4,
        save_steps=8,
        eval_steps=8,
        ddp_find_unused_parameters=False,
    )
    return run_pretrain(args, nproc=2), out


def test_zero2_lora_two_processes_vocab_extension(
    zero2_lora_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = zero2_lora_run
    events = assert_trained(proc, out)
    _no_abort(proc)
    assert "vocabulary extended from 384 to 768 tokens" in output_of(proc)
    start = next(e for e in events if e["kind"] == "start")
    assert start["world_size"] == 2 and start["vocab_size"] == 768
    assert start["tokens_per_step"] == 64 * 4 * 2
    assert len([e for e in events if e["kind"] == "start"]) == 1  # rank 0 only
    assert len([e for e in events if e["kind"] == "end"]) == 1
    ckpt = out / "checkpoint-16"
    shards = sorted(p.name for p in ckpt.glob("global_step16/*optim_states.pt"))
    assert len(shards) == 2, shards  # optimizer state partitioned over the 2 ranks
    assert json.loads((ckpt / "cpt_run.json").read_text())["world_size"] == 2
    assert (out / "adapter_model.safetensors").is_file()


@pytest.fixture
def in_process() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_resume_with_other_process_count_fails_before_training(
    zero2_lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
    tmp_path: Path,
    in_process: None,
) -> None:
    _, src = zero2_lora_run
    out = tmp_path / "out"
    out.mkdir()
    import shutil

    shutil.copytree(src / "checkpoint-8", out / "checkpoint-8")
    code = pretrain.main(
        tiny_args(tiny_assets, out, data_cache, max_steps=16, resume_from_checkpoint="last")
    )
    assert code == EXIT_BAD_INPUT
    events = events_of(out)
    assert [e["kind"] for e in events] == ["end"]  # nothing started
    reason = events[0]["reason"]
    assert "--resume_from_checkpoint checkpoint-8" in reason
    assert "2 processes" in reason and "has 1" in reason


def test_zero2_full_weights_without_launcher(
    tiny_assets: dict[str, Path], data_cache: Path, tmp_path: Path
) -> None:
    """``python worker/pretrain.py --deepspeed ...`` (no torchrun): full weights under ZeRO-2."""
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets,
        out,
        data_cache,
        deepspeed=DS_CONFIGS / "ds_zero2_no_offload.json",
        finetuning_type="full",
        tokenizer_name_or_path=None,
        learning_rate=1e-3,
        max_steps=12,
        logging_steps=3,
        save_steps=12,
        eval_steps=12,
    )
    proc = run_pretrain(args)
    events = assert_trained(proc, out, finetuning_type="full")
    _no_abort(proc)
    start = next(e for e in events if e["kind"] == "start")
    assert start["trainable_params"] == start["total_params"] and start["vocab_size"] == 384
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert (out / "checkpoint-12" / "global_step12").is_dir()


def _logits(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        return model(ids).logits


def test_zero3_full_weights_two_processes_and_conversion(
    tiny_assets: dict[str, Path], data_cache: Path, tmp_path: Path
) -> None:
    """ZeRO-3 shards the tiny model (persistence threshold 0); its checkpoint converts to HF."""
    config: dict[str, Any] = json.loads((DS_CONFIGS / "ds_zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    ds = tmp_path / "ds_zero3_tiny.json"
    ds.write_text(json.dumps(config))
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets,
        out,
        data_cache,
        deepspeed=ds,
        finetuning_type="full",
        tokenizer_name_or_path=None,
        learning_rate=1e-3,
        max_steps=12,
        logging_steps=3,
        save_steps=12,
        eval_steps=12,
    )
    proc = run_pretrain(args, nproc=2)
    events = assert_trained(proc, out, finetuning_type="full")
    _no_abort(proc)
    start = next(e for e in events if e["kind"] == "start")
    assert start["world_size"] == 2
    assert start["total_params"] == 131392  # counted from ds_numel, not the empty shards
    ckpt = out / "checkpoint-12"
    assert len(list(ckpt.glob("global_step12/*model_states.pt"))) == 2

    converted = tmp_path / "converted"
    conv = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.merge_lora",
            "--zero_checkpoint",
            str(ckpt),
            "--output",
            str(converted),
        ],
        cwd=ROOT,
        env=train_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert conv.returncode == 0, conv.stderr[-3000:]
    assert (converted / "model.safetensors").is_file() and (converted / "tokenizer.json").is_file()
    ids = torch.randint(0, 384, (2, 48), generator=torch.Generator().manual_seed(0))
    got, final = _logits(converted, ids), _logits(out, ids)
    assert torch.allclose(got, final, atol=1e-4), (got - final).abs().max()
    assert not torch.allclose(got, _logits(tiny_assets["model"], ids), atol=1e-2)  # it trained


def _fill_auto(node: Any, values: dict[str, Any], key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _fill_auto(v, values, k) for k, v in node.items()}
    if node == "auto":
        return values[key]
    return node


@pytest.mark.parametrize(
    ("name", "stage", "offload"),
    [
        ("ds_zero2_no_offload.json", 2, False),
        ("ds_zero2_offload.json", 2, True),
        ("ds_zero3.json", 3, False),
        ("ds_zero3_offload.json", 3, True),
    ],
)
def test_deepspeed_configs_valid(name: str, stage: int, offload: bool) -> None:
    """Each config parses in DeepSpeed 0.19 once the Trainer's "auto" values are filled in."""
    from deepspeed.runtime.config import DeepSpeedConfig

    raw = json.loads((DS_CONFIGS / name).read_text())
    assert raw["zero_optimization"]["stage"] == stage
    assert isinstance(raw["fp16"]["min_loss_scale"], int)  # 0.19 rejects 1e-10
    if stage == 3:
        assert "train_batch_size" not in raw  # ZeRO-3 rejects "auto" there during from_pretrained
        assert raw["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert ("offload_optimizer" in raw["zero_optimization"]) == offload
    values = {
        "enabled": False,
        "lr": 2e-4,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.01,
        "gradient_accumulation_steps": 8,
        "gradient_clipping": 1.0,
        "train_batch_size": 8,
        "train_micro_batch_size_per_gpu": 1,
        "reduce_bucket_size": 64 * 64,
        "stage3_prefetch_bucket_size": int(0.9 * 64 * 64),
        "stage3_param_persistence_threshold": 10 * 64,
    }
    parsed = DeepSpeedConfig(_fill_auto(raw, values))
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_micro_batch_size_per_gpu == 1 and parsed.gradient_accumulation_steps == 8
