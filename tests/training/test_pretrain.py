"""worker/pretrain.py, one process: LoRA with vocabulary extension, events, checkpoints, resume, cancel.

Real runs of the script (subprocesses) on the tiny local Llama and the real multilingual corpus.
The helpers here are shared by the other ``test_pretrain_*`` modules.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.panel import ROOT
from tests.support.pretrain import (
    SCRIPT,
    assert_events_wellformed,
    assert_trained,
    events_of,
    losses_by_step,
    output_of,
    run_pretrain,
    tiny_args,
    train_env,
)
from worker.exit_codes import EXIT_BAD_INPUT
from worker.training.checkpoints import resolve_resume


def test_lora_plain_python(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
) -> None:
    proc, out = lora_run
    events = assert_trained(proc, out)
    text = output_of(proc)
    assert "vocabulary extended from 384 to 768 tokens" in text
    start = next(e for e in events if e["kind"] == "start")
    assert start["kind"] == "start" and start["step"] == 0 and start["resumed_from"] is None
    assert start["vocab_size"] == 768 and start["world_size"] == 1 and start["max_steps"] == 24
    assert start["tokens_per_step"] == 64 * 4
    assert 0 < start["trainable_params"] < start["total_params"]
    logs = [e for e in events if e["kind"] == "log"]
    assert [e["step"] for e in logs] == list(range(1, 25))  # logging_first_step + every step
    assert logs[-1]["tokens_seen"] == 24 * 256
    # eval at 0 (the baseline), 12 and 24 (the last doubles as the final one); saves at 8/16/24.
    assert [e["step"] for e in events if e["kind"] == "eval"] == [0, 12, 24]
    assert [e["name"] for e in events if e["kind"] == "checkpoint"] == [
        "checkpoint-8",
        "checkpoint-16",
        "checkpoint-24",
    ]
    end = events[-1]
    assert end["perplexity"] == pytest.approx(math.exp(end["eval_loss"]))
    assert end["train_loss"] > 0
    # save_total_limit 2: the oldest checkpoint was rotated away.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-16", "checkpoint-24"]
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    assert set(adapter["modules_to_save"]) == {"embed_tokens", "lm_head"}
    # The corpus was tokenized into the cache once per file.
    cached = [p.name for p in data_cache.iterdir()]
    for f in tiny_assets["corpus"].iterdir():
        assert any(name.startswith(f.stem + "-") for name in cached), f.name


def test_phases_are_timed_and_speed_counts_training_time_only(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Phase events in order, each timing the one it ends; evaluations and saves carry their
    seconds; tokens/s is the interval's steps over its training seconds (no eval/save in it)."""
    proc, out = lora_run
    assert proc.returncode == 0, output_of(proc)[-4000:]
    events = events_of(out)
    phases = [e for e in events if e["kind"] == "phase"]
    names = [e["phase"] for e in phases]
    assert names[:3] == ["preparing_data", "loading_model", "training"], names
    assert "evaluating" in names and "saving" in names, names
    for before, after in itertools.pairwise(phases):
        assert after["previous"] == before["phase"], (before, after)
        gap = after["time"] - before["time"]
        assert after["previous_seconds"] == pytest.approx(gap, abs=0.05), (before, after)
    # Every evaluation is bracketed, the step-0 baseline too: evaluating at its step, then back.
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 12, 24]
    assert all(e["seconds"] is not None and e["seconds"] >= 0 for e in evals), evals
    saves = [e for e in events if e["kind"] == "checkpoint"]
    assert all(e["seconds"] is not None and e["seconds"] >= 0 for e in saves), saves
    start = next(e for e in events if e["kind"] == "start")
    logs = [e for e in events if e["kind"] == "log"]
    timed = [e for e in logs if e["interval_steps"]]
    assert len(timed) >= 20, logs
    for e in timed:
        expected = e["interval_steps"] * start["tokens_per_step"] / e["train_seconds"]
        assert e["tokens_per_second"] == pytest.approx(expected, rel=1e-3), e
    # The interval after an evaluation does not include it: no step reads as slow as an eval.
    slowest = max(e["train_seconds"] / e["interval_steps"] for e in timed)
    assert slowest < max(e["seconds"] for e in evals) + 5.0


def test_data_cache_reused_and_rebuilt(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
    tmp_path: Path,
) -> None:
    """A rerun hits the cache; a changed file gets a new entry, the others are reused."""
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_assets["corpus"], corpus)
    before = {p.name for p in data_cache.iterdir()}
    changed = corpus / "udhr_kn_Knda.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "ಹೊಸ ಸಾಲು.\n", encoding="utf-8")
    proc = run_pretrain(
        tiny_args(
            tiny_assets,
            tmp_path / "out",
            data_cache,
            dataset_dir=corpus,
            max_steps=4,
            eval_steps=4,
            save_steps=4,
        )
    )
    assert proc.returncode == 0, output_of(proc)[-6000:]
    assert events_of(tmp_path / "out")[-1]["status"] == "succeeded"
    new = {p.name for p in data_cache.iterdir()} - before
    assert len(new) == 1 and next(iter(new)).startswith("udhr_kn_Knda-"), new
    assert output_of(proc).count("data cache hit") == len(list(corpus.iterdir())) - 1


def test_resume_reproduces_uninterrupted_losses(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
    tmp_path: Path,
) -> None:
    """Resuming from the reference run's checkpoint-16 reproduces its losses for steps 17-24."""
    ref_proc, ref_out = lora_run
    assert ref_proc.returncode == 0, output_of(ref_proc)[-4000:]
    reference = losses_by_step(events_of(ref_out))
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(ref_out / "checkpoint-16", out / "checkpoint-16")
    proc = run_pretrain(tiny_args(tiny_assets, out, data_cache, resume_from_checkpoint="last"))
    events = events_of(out)
    assert proc.returncode == 0, output_of(proc)[-6000:]
    start = next(e for e in events if e["kind"] == "start")
    assert start["kind"] == "start" and start["step"] == 16
    assert start["resumed_from"] == str((out / "checkpoint-16").resolve())
    resumed = losses_by_step(events)
    assert sorted(resumed) == list(range(17, 25))
    for step, loss in resumed.items():
        assert loss == pytest.approx(reference[step], abs=1e-5), (step, loss, reference[step])
    assert events[-1]["status"] == "succeeded"
    # tokens/s after a resume: training time only, so the first interval is no spike.
    speeds = sorted(e["tokens_per_second"] for e in events if e["kind"] == "log")
    median = speeds[len(speeds) // 2]
    assert max(speeds) <= 2 * median, speeds
    assert all(e["step"] >= 16 for e in events if e["kind"] in ("log", "eval", "checkpoint"))


def test_cancel_then_resume_appends_events(
    tiny_assets: dict[str, Path], data_cache: Path, tmp_path: Path
) -> None:
    """SIGUSR2 (the panel's cancel) → end 'cancelled', exit 143, promptly; the resumed run
    appends with rising seq. (SIGTERM saves a checkpoint first: tests/e2e/test_faults.py.)"""
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets,
        out,
        data_cache,
        max_steps=100000,
        save_steps=5,
        eval_steps=None,
        eval_strategy="no",
    )
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=train_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        events_path = out / "events.jsonl"
        while time.time() < deadline and proc.poll() is None:
            if events_path.exists() and '"checkpoint"' in events_path.read_text(encoding="utf-8"):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read().decode()[-4000:] if proc.stdout else ""
        sent = time.time()
        os.killpg(proc.pid, signal.SIGUSR2)
        code = proc.wait(timeout=30)
        assert time.time() - sent < 15
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert code == 143
    first = events_of(out)
    assert_events_wellformed(first)
    assert first[-1]["kind"] == "end" and first[-1]["status"] == "cancelled", first[-1]
    cancelled_step = first[-1]["step"]
    assert cancelled_step >= 5

    # Resume (fewer total steps so it ends quickly): picks the newest complete checkpoint.
    finished = [p for p in out.glob("checkpoint-*") if (p / "cpt_run.json").is_file()]
    newest = max(int(p.name.split("-")[1]) for p in finished)
    resumed = run_pretrain(
        tiny_args(
            tiny_assets,
            out,
            data_cache,
            max_steps=newest + 3,
            save_steps=5,
            eval_steps=None,
            eval_strategy="no",
            resume_from_checkpoint="last",
        )
    )
    assert resumed.returncode == 0, output_of(resumed)[-6000:]
    both = events_of(out)
    assert both[: len(first)] == first  # appended, never rewritten
    assert_events_wellformed(both)
    assert both[len(first)]["seq"] == first[-1]["seq"] + 1
    assert both[len(first)]["kind"] == "phase"  # preparing data comes first
    start = next(e for e in both[len(first) :] if e["kind"] == "start")
    assert start["step"] == newest
    assert start["resumed_from"].endswith(f"checkpoint-{newest}")
    assert both[-1]["status"] == "succeeded" and both[-1]["step"] == newest + 3


def test_resume_by_checkpoint_name_and_missing(
    lora_run: tuple[subprocess.CompletedProcess[str], Path],
    tiny_assets: dict[str, Path],
    data_cache: Path,
    tmp_path: Path,
) -> None:
    """``--resume_from_checkpoint checkpoint-N`` is looked up in output_dir; a missing one is exit 2.

    In process (``pretrain.main``): it fails before any model or data is loaded.
    """
    from worker import pretrain

    _, ref_out = lora_run
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(ref_out / "checkpoint-24", out / "checkpoint-24")
    assert resolve_resume("checkpoint-24", out) == (out / "checkpoint-24").resolve()
    assert resolve_resume("last", out) == out / "checkpoint-24"
    assert (
        resolve_resume(str(ref_out / "checkpoint-16"), out) == (ref_out / "checkpoint-16").resolve()
    )
    assert resolve_resume("last", tmp_path / "empty") is None  # nothing yet: start fresh
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = pretrain.main(
            tiny_args(tiny_assets, out, data_cache, resume_from_checkpoint="checkpoint-7")
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == EXIT_BAD_INPUT
    end = events_of(out)[-1]
    assert end["kind"] == "end" and end["status"] == "failed"
    assert "--resume_from_checkpoint checkpoint-7" in end["reason"]
