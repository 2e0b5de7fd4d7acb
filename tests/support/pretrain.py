"""Helpers and fixtures for the training-script tests: run ``worker/pretrain.py`` for real on the
tiny local Llama and read what it wrote (events, checkpoints, output).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cpt_contract.events import KINDS, PHASES
from tests.support.panel import ROOT, free_port

SCRIPT = ROOT / "worker" / "pretrain.py"
DS_CONFIGS = ROOT / "worker" / "ds_configs"
LOG_FIELDS = {"loss", "learning_rate", "grad_norm", "epoch", "tokens_seen", "tokens_per_second"}
START_FIELDS = {
    "max_steps",
    "num_train_epochs",
    "world_size",
    "tokens_per_step",
    "total_params",
    "trainable_params",
    "vocab_size",
    "resumed_from",
    "finetuning_type",
}


def train_env() -> dict[str, str]:
    # One intra-op thread per process: with 2 cores shared by several processes, OpenMP threads
    # spin-waiting on each other make a tiny model 50x slower.
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "DS_ACCELERATOR": "cpu",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


def tiny_args(assets: dict[str, Path], out: Path, cache: Path, **flags: Any) -> list[str]:
    """A short LoRA run on the tiny Llama with the extended tokenizer; ``flags`` override."""
    base: dict[str, Any] = {
        "model_name_or_path": assets["model"],
        "tokenizer_name_or_path": assets["tokenizer_extended"],
        "dataset_dir": assets["corpus"],
        "data_cache_dir": cache,
        "block_size": 64,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "max_steps": 24,
        "learning_rate": 2e-3,
        "warmup_ratio": 0.05,
        "lr_scheduler_type": "cosine",
        "logging_steps": 1,
        "logging_first_step": True,
        "save_steps": 8,
        "save_total_limit": 2,
        "eval_strategy": "steps",
        "eval_steps": 12,
        "validation_split_percentage": 0.05,
        "max_eval_samples": 32,
        "seed": 7,
        "output_dir": out,
        "report_to": "none",
    }
    base.update(flags)
    argv: list[str] = []
    for key, value in base.items():
        if value is None:
            continue
        if value is True:
            argv += [f"--{key}", "True"] if key == "logging_first_step" else [f"--{key}"]
        else:
            argv += [f"--{key}", str(value)]
    return [*argv, "--do_train", "--use_cpu"]


def run_pretrain(
    args: list[str], nproc: int | None = None, timeout: float = 240, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """``python worker/pretrain.py`` (nproc None) or torchrun with ``nproc`` processes."""
    if nproc is None:
        cmd = [sys.executable, str(SCRIPT), *args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc_per_node",
            str(nproc),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(SCRIPT),
            *args,
        ]
    return subprocess.run(
        cmd, cwd=cwd, env=train_env(), capture_output=True, text=True, timeout=timeout
    )


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout or "") + (proc.stderr or "")


def events_of(out: Path) -> list[dict[str, Any]]:
    path = out / "events.jsonl"
    assert path.is_file(), f"no events.jsonl in {out}"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_events_wellformed(events: list[dict[str, Any]]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"seq not strictly rising: {seqs}"
    for e in events:
        assert {"seq", "time", "kind", "step"} <= e.keys(), e
        assert e["kind"] in KINDS, e
        if e["kind"] == "start":
            assert e.keys() >= START_FIELDS, e
        elif e["kind"] == "log":
            assert e.keys() >= LOG_FIELDS, e
        elif e["kind"] == "eval":
            assert {"eval_loss", "perplexity", "epoch"} <= e.keys(), e
            assert e["perplexity"] == pytest.approx(math.exp(e["eval_loss"]), rel=1e-6)
        elif e["kind"] == "phase":
            assert e["phase"] in PHASES, e
        elif e["kind"] == "checkpoint":
            assert Path(e["path"]).name == e["name"] and e["name"].startswith("checkpoint-"), e
        elif e["kind"] == "stage":
            assert {"index", "method", "start", "end", "learning_rate"} <= e.keys(), e
            assert e["start"] <= e["step"] < e["end"], e
        else:
            assert e["status"] in {"succeeded", "failed", "diverged", "oom", "cancelled"}, e
            assert e["reason"] and "\n" not in e["reason"], e


def assert_trained(
    proc: subprocess.CompletedProcess[str], out: Path, finetuning_type: str = "lora"
) -> list[dict[str, Any]]:
    """Exit 0, events well formed, every kind present, loss fell, one final succeeded end."""
    assert proc.returncode == 0, output_of(proc)[-6000:]
    events = events_of(out)
    assert_events_wellformed(events)
    kinds = {e["kind"] for e in events}
    assert {"start", "log", "eval", "end"} <= kinds, kinds
    assert events[-1]["kind"] == "end" and events[-1]["status"] == "succeeded", events[-1]
    start = [e for e in events if e["kind"] == "start"][-1]
    assert start["finetuning_type"] == finetuning_type
    losses = [e["loss"] for e in events if e["kind"] == "log" and e["seq"] > start["seq"]]
    assert len(losses) >= 2, events
    assert losses[-1] < losses[0] - 0.05, f"loss did not fall: {losses}"
    assert all(
        e["tokens_per_second"] is None or e["tokens_per_second"] > 0
        for e in events
        if e["kind"] == "log"
    )
    return events


def losses_by_step(events: list[dict[str, Any]], after_seq: int = 0) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["kind"] == "log" and e["seq"] > after_seq}


def _shared_dir(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fixed directory of this session: other modules re-export these fixtures, and pytest
    would otherwise build a session fixture once per module that names it."""
    path = factory.getbasetemp() / name
    path.mkdir(exist_ok=True)
    return path


_REFERENCE_RUNS: dict[Path, subprocess.CompletedProcess[str]] = {}


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenized-data cache for the session: later runs reuse it."""
    return _shared_dir(tmp_path_factory, "data-cache")


@pytest.fixture(scope="session")
def lora_run(
    tiny_assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, data_cache: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The reference run: plain python, LoRA, extended vocabulary, 24 steps (run once a session)."""
    out = _shared_dir(tmp_path_factory, "lora-reference") / "out"
    if out not in _REFERENCE_RUNS:
        _REFERENCE_RUNS[out] = run_pretrain(tiny_args(tiny_assets, out, data_cache))
    return _REFERENCE_RUNS[out], out
