"""Staged training in one run (``--stages``, worker/training/stages.py), on the tiny Llama with
its extended tokenizer (384 → 768 rows, untied embeddings): stage 1 trains only the new
embedding rows, stage 2 the run's method; one events stream, the boundary saved and evaluated,
and a checkpoint of either stage resumes inside that stage with the same losses.
(SmolLM2, tied embeddings and bits per character: tests/training/test_stages_real_model.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from tests.support.pretrain import (
    assert_events_wellformed,
    events_of,
    losses_by_step,
    output_of,
    run_pretrain,
    tiny_args,
)
from worker.exit_codes import EXIT_BAD_INPUT

BASE_ROWS = 384
STAGES = [
    {"method": "new_embeddings", "max_steps": 4, "learning_rate": 1e-2, "name": "embeddings"},
    {"max_steps": 4},
]


def _args(assets: dict[str, Path], out: Path, cache: Path, **flags: Any) -> list[str]:
    base: dict[str, Any] = {
        "max_steps": None,
        "stages": json.dumps(STAGES),
        "save_steps": 3,
        "save_total_limit": None,
        "eval_steps": None,
        "eval_strategy": None,
    }
    return tiny_args(assets, out, cache, **(base | flags))


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


_RUNS: dict[str, tuple[subprocess.CompletedProcess[str], Path]] = {}


def _staged_run(
    method: str, assets: dict[str, Path], cache: Path, factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    if method not in _RUNS:
        out = factory.mktemp(f"staged-{method}") / "out"
        _RUNS[method] = run_pretrain(_args(assets, out, cache, finetuning_type=method)), out
    return _RUNS[method]


@pytest.fixture(scope="module")
def full_run(
    tiny_assets: dict[str, Path], data_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    return _staged_run("full", tiny_assets, data_cache, tmp_path_factory)


def test_stages_run_in_one_stream_with_the_boundary_marked(
    full_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = full_run
    assert proc.returncode == 0, output_of(proc)[-6000:]
    events = events_of(out)
    assert_events_wellformed(events)
    start = next(e for e in events if e["kind"] == "start")
    assert start["max_steps"] == 8
    plan = start["stages"]
    assert [(s["method"], s["start"], s["end"]) for s in plan] == [
        ("new_embeddings", 0, 4),
        ("full", 4, 8),
    ]
    # Stage 1 updates the new rows of both matrices (untied here), nothing else.
    assert plan[0]["trainable_params"] == 2 * (768 - BASE_ROWS) * 64
    assert plan[1]["trainable_params"] == start["total_params"]
    stages = [e for e in events if e["kind"] == "stage"]
    assert [(e["step"], e["index"], e["start"], e["resumed"]) for e in stages] == [
        (0, 0, 0, False),
        (4, 1, 4, False),
    ]
    # One stream: steps 1..8, each stage's learning rate (peak 1e-2, then the run's 2e-3).
    logs = [e for e in events if e["kind"] == "log"]
    assert [e["step"] for e in logs] == list(range(1, 9))
    assert max(e["learning_rate"] for e in logs[:4]) == pytest.approx(1e-2)
    assert max(e["learning_rate"] for e in logs[4:]) == pytest.approx(2e-3)
    # The boundary is saved and evaluated (besides step 0, save_steps 3 and the end).
    assert [e["step"] for e in events if e["kind"] == "eval"] == [0, 4, 8]
    assert [e["name"] for e in events if e["kind"] == "checkpoint"] == [
        "checkpoint-3",
        "checkpoint-4",
        "checkpoint-6",
        "checkpoint-8",
    ]
    info = json.loads((out / "checkpoint-4" / "cpt_run.json").read_text())
    assert info["stage"] == 0 and info["step"] == 4


def test_stage_one_moves_only_the_new_embedding_rows(
    full_run: tuple[subprocess.CompletedProcess[str], Path], tiny_assets: dict[str, Path]
) -> None:
    proc, out = full_run
    assert proc.returncode == 0, output_of(proc)[-6000:]
    base = _weights(tiny_assets["model"])
    after1, after2 = _weights(out / "checkpoint-4"), _weights(out / "checkpoint-8")
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        # Bit-identical base rows (a gradient mask, no weight decay), new rows trained.
        assert torch.equal(after1[name][:BASE_ROWS], base[name]), name
        assert not torch.equal(after1[name][BASE_ROWS:], after2[name][BASE_ROWS:]), name
    start_rows = _weights(out / "checkpoint-3")["model.embed_tokens.weight"][BASE_ROWS:]
    assert not torch.equal(start_rows, after1["model.embed_tokens.weight"][BASE_ROWS:])
    others = [n for n in base if n not in ("model.embed_tokens.weight", "lm_head.weight")]
    assert others
    for name in others:
        assert torch.equal(after1[name], base[name]), name
    # Stage 2 (full weights) moves the rest.
    assert any(not torch.equal(after2[name], base[name]) for name in others)
    assert not torch.equal(after2["lm_head.weight"][:BASE_ROWS], base["lm_head.weight"])


@pytest.mark.parametrize(("checkpoint", "stage"), [(6, 1), (3, 0)])
def test_a_checkpoint_resumes_inside_its_stage(
    full_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
    tmp_path: Path,
    checkpoint: int,
    stage: int,
) -> None:
    """Resuming from checkpoint-6 (stage 2) or checkpoint-3 (stage 1) picks the stage from the
    step and reproduces the uninterrupted run's losses and learning rates."""
    ref_proc, ref_out = full_run
    assert ref_proc.returncode == 0, output_of(ref_proc)[-6000:]
    reference = events_of(ref_out)
    out = tmp_path / "out"
    out.mkdir()
    name = f"checkpoint-{checkpoint}"
    shutil.copytree(ref_out / name, out / name)
    # Under torchrun (the worker's way; DDP wraps the model even for one process, so inactive
    # parameters are zeroed in backward rather than frozen): the same losses as plain python.
    proc = run_pretrain(
        _args(tiny_assets, out, data_cache, finetuning_type="full", resume_from_checkpoint="last"),
        nproc=1,
    )
    assert proc.returncode == 0, output_of(proc)[-6000:]
    events = events_of(out)
    stages = [e for e in events if e["kind"] == "stage"]
    assert stages[0]["index"] == stage and stages[0]["step"] == checkpoint
    assert stages[0]["resumed"] is True
    assert [e["index"] for e in stages] == list(range(stage, 2))
    resumed = losses_by_step(events)
    expected = losses_by_step(reference)
    assert sorted(resumed) == list(range(checkpoint + 1, 9))
    for step, loss in resumed.items():
        assert loss == pytest.approx(expected[step], abs=1e-5), (step, loss, expected[step])
    lrs = {e["step"]: e["learning_rate"] for e in events if e["kind"] == "log"}
    ref_lrs = {e["step"]: e["learning_rate"] for e in reference if e["kind"] == "log"}
    assert lrs == {s: pytest.approx(ref_lrs[s]) for s in lrs}
    if stage == 0:  # the rows are still the base's after resuming inside stage 1
        base = _weights(tiny_assets["model"])
        again = _weights(out / "checkpoint-4")
        assert torch.equal(again["lm_head.weight"][:BASE_ROWS], base["lm_head.weight"])


def test_lora_stages_train_the_new_rows_then_the_adapters(
    tiny_assets: dict[str, Path], data_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    proc, out = _staged_run("lora", tiny_assets, data_cache, tmp_path_factory)
    assert proc.returncode == 0, output_of(proc)[-6000:]
    plan = next(e for e in events_of(out) if e["kind"] == "start")["stages"]
    assert [s["method"] for s in plan] == ["new_embeddings", "lora"]
    base = _weights(tiny_assets["model"])
    after1 = load_file(str(out / "checkpoint-4" / "adapter_model.safetensors"))
    after2 = load_file(str(out / "checkpoint-8" / "adapter_model.safetensors"))
    emb = next(n for n in after1 if "embed_tokens" in n)
    head = next(n for n in after1 if "lm_head" in n)
    assert torch.equal(after1[emb][:BASE_ROWS], base["model.embed_tokens.weight"])
    assert torch.equal(after1[head][:BASE_ROWS], base["lm_head.weight"])
    lora_b = [n for n in after1 if "lora_B" in n]
    assert lora_b and all(not after1[n].any() for n in lora_b)  # adapters untouched in stage 1
    assert any(after2[n].any() for n in lora_b)


def test_new_embeddings_without_an_extended_tokenizer_is_refused(
    tiny_assets: dict[str, Path], data_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = run_pretrain(
        _args(tiny_assets, out, data_cache, finetuning_type="full", tokenizer_name_or_path=None)
    )
    assert proc.returncode == EXIT_BAD_INPUT, output_of(proc)[-4000:]
    assert "--stages" in output_of(proc) and "extended tokenizer" in output_of(proc)
    end = events_of(out)[-1]
    assert end["kind"] == "end" and "--stages" in end["reason"]
