"""worker/pretrain.py error cases: a message naming the flag, a non-zero exit, an ``end`` event.

Cases that fail before training run ``pretrain.main(argv)`` in this process (the same code path as
``sys.exit(main())``, without paying the torch import once per case); divergence, host OOM and one
input error run as real subprocesses to check the process exit code.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.support.pretrain import events_of, output_of, run_pretrain, tiny_args
from worker import demo_assets, pretrain
from worker.exit_codes import EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_OOM
from worker.training.failures import classify


@pytest.fixture
def in_process() -> Iterator[None]:
    """main() installs a SIGTERM handler; give pytest its own back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def assert_failed(
    out: Path, code: int, expected_code: int, *needles: str, status: str = "failed"
) -> dict[str, Any]:
    assert code == expected_code
    end = events_of(out)[-1]
    assert end["kind"] == "end" and end["status"] == status, end
    for needle in needles:
        assert needle in end["reason"], (needle, end["reason"])
    return end


def test_no_text_files_subprocess(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("not training data")
    out = tmp_path / "out"
    proc = run_pretrain(tiny_args(tiny_assets, out, tmp_path / "cache", dataset_dir=empty))
    assert proc.returncode == EXIT_BAD_INPUT, output_of(proc)[-3000:]
    assert "--dataset_dir" in output_of(proc) and "no corpus files (.txt, .jsonl" in output_of(proc)
    assert_failed(out, proc.returncode, 2, "--dataset_dir", str(empty))


def test_invalid_utf8(tiny_assets: dict[str, Path], tmp_path: Path, in_process: None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.txt").write_text("ಎಲ್ಲಾ ಮಾನವರೂ ಸ್ವತಂತ್ರರಾಗಿಯೇ ಜನಿಸಿದ್ದಾರೆ.\n" * 50, encoding="utf-8")
    (data / "latin1.txt").write_bytes(
        "Déclaration universelle des droits de l'homme\n".encode("latin-1")
    )
    out = tmp_path / "out"
    code = pretrain.main(tiny_args(tiny_assets, out, tmp_path / "cache", dataset_dir=data))
    assert_failed(out, code, 2, "--dataset_dir", "latin1.txt", "not valid UTF-8")


def test_block_size_above_max_positions(
    tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    out = tmp_path / "out"
    code = pretrain.main(tiny_args(tiny_assets, out, tmp_path / "cache", block_size=1024))
    assert_failed(out, code, 2, "--block_size 1024", "maximum positions", "512")


def test_fp16_on_cpu(tiny_assets: dict[str, Path], tmp_path: Path, in_process: None) -> None:
    out = tmp_path / "out"
    code = pretrain.main([*tiny_args(tiny_assets, out, tmp_path / "cache"), "--fp16"])
    assert_failed(out, code, 2, "--fp16", "--bf16")


def test_tokenizer_smaller_than_vocabulary(
    tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    small = tmp_path / "small-tokenizer"
    texts = (tiny_assets["corpus"] / "udhr_en_Latn.txt").read_text(encoding="utf-8").splitlines()
    demo_assets.save_hf_tokenizer(demo_assets.train_bpe(texts, 300), small)
    out = tmp_path / "out"
    code = pretrain.main(
        tiny_args(tiny_assets, out, tmp_path / "cache", tokenizer_name_or_path=small)
    )
    assert_failed(out, code, 2, "--tokenizer_name_or_path", "300 tokens", "384")


@pytest.mark.parametrize("flag", ["trainable", "modules_to_save"])
def test_unknown_module_lists_module_names(
    flag: str, tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    out = tmp_path / "out"
    code = pretrain.main(tiny_args(tiny_assets, out, tmp_path / "cache", **{flag: "q_proj,wte"}))
    end = assert_failed(out, code, 2, f"--{flag}", "wte")
    for name in ("q_proj", "v_proj", "embed_tokens", "lm_head", "gate_proj"):
        assert name in end["reason"]


def test_existing_checkpoints_need_resume_or_overwrite(
    tiny_assets: dict[str, Path], tmp_path: Path, in_process: None
) -> None:
    out = tmp_path / "out"
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "trainer_state.json").write_text("{}")
    code = pretrain.main(tiny_args(tiny_assets, out, tmp_path / "cache"))
    assert_failed(out, code, 2, "--resume_from_checkpoint last", "--overwrite_output_dir")


def test_a_finite_loss_that_runs_away_stops_as_diverged(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Not NaN, just wrong: a learning rate of 0.5 sends the loss from ~6.7 to 11-21. With
    divergence_factor 1.5 over 3 logs the run ends diverged, with the numbers, and saves
    nothing (the old rule only knew NaN/inf, and such a run ended ``succeeded``)."""
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets,
        out,
        tmp_path / "cache",
        finetuning_type="full",
        learning_rate=0.5,
        warmup_ratio=0.0,
        lr_scheduler_type="constant",
        max_steps=40,
        eval_strategy="no",
        eval_steps=None,
        save_steps=100,
        validation_split_percentage=0,
        divergence_factor=1.5,
        divergence_logs=3,
    )
    proc = run_pretrain(args)
    assert proc.returncode == EXIT_DIVERGED, output_of(proc)[-3000:]
    events = events_of(out)
    end = events[-1]
    assert end["kind"] == "end" and end["status"] == "diverged", end
    assert "above 1.5 x its best" in end["reason"] and "3 logs in a row" in end["reason"]
    assert end["step"] < 40 and not list(out.glob("checkpoint-*"))


def test_a_checkpoint_that_fills_the_disk_is_removed_and_named(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """The output on a real 4 MiB tmpfs: checkpoint-4 (2.2 MB) fits, checkpoint-8 does not.
    Found: a raw ``SafetensorError "No space left on device"`` (or torch's "unexpected pos")
    naming neither the path nor the fix, and the partial checkpoint-N left behind."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "out"
        args = tiny_args(
            tiny_assets,
            out,
            tmp_path / "cache",
            finetuning_type="full",
            max_steps=12,
            save_steps=4,
            save_total_limit=5,
            eval_strategy="no",
            eval_steps=None,
            validation_split_percentage=0,
        )
        proc = run_pretrain(args)
        assert proc.returncode != 0, output_of(proc)[-2000:]
        end = events_of(out)[-1]
        assert end["kind"] == "end" and end["status"] == "disk_full", end
        assert end["reason"].startswith(f"disk full on {disk} ({out / 'checkpoint-8'})"), end
        assert "lower --save_total_limit" in end["reason"] and "MB free" in end["reason"]
        assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4"]
        assert (out / "checkpoint-4" / "cpt_run.json").exists()  # the complete one stays
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_nan_loss_stops_as_diverged(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    """A learning rate of 1e30 blows the weights up: NaN loss on 3 consecutive steps → diverged."""
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets,
        out,
        tmp_path / "cache",
        finetuning_type="full",
        learning_rate=1e30,
        warmup_ratio=0.0,
        max_steps=40,
        eval_strategy="no",
        eval_steps=None,
        save_steps=100,
        validation_split_percentage=0,
    )
    proc = run_pretrain([*args, "--divergence_patience", "3"])
    assert proc.returncode == EXIT_DIVERGED, output_of(proc)[-3000:]
    events = events_of(out)
    end = assert_failed(
        out,
        proc.returncode,
        3,
        "NaN/inf",
        "3 consecutive steps",
        "--learning_rate",
        status="diverged",
    )
    assert end["step"] < 40  # stopped early
    logs = [e for e in events if e["kind"] == "log"]
    assert [e["loss"] for e in logs[-3:]] == [None, None, None]  # NaN reported as null, not 0
    assert not list(out.glob("checkpoint-*"))


def test_host_out_of_memory(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    """From scratch with hidden_size 2^18: a 256 GiB weight cannot be allocated → oom, exit 4."""
    out = tmp_path / "out"
    args = tiny_args(
        tiny_assets,
        out,
        tmp_path / "cache",
        model_name_or_path=None,
        config_overrides="hidden_size=262144,num_hidden_layers=1,num_attention_heads=4,num_key_value_heads=4,intermediate_size=128,max_position_embeddings=512",
    )
    proc = run_pretrain(args, timeout=150)
    assert proc.returncode == EXIT_OOM, output_of(proc)[-3000:]
    assert_failed(
        out,
        proc.returncode,
        4,
        "out of memory",
        "--per_device_train_batch_size",
        "--gradient_checkpointing",
        "ZeRO-3",
        status="oom",
    )


def test_cuda_oom_is_classified_as_oom() -> None:
    """GPU boundary (no GPU here): the exception CUDA raises maps to status oom, exit 4, with hints."""
    exc = torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total)"
    )
    status, reason, code = classify(exc)
    assert (status, code) == ("oom", EXIT_OOM)
    for hint in (
        "--per_device_train_batch_size",
        "--gradient_checkpointing",
        "ZeRO-3",
        "20.00 GiB",
    ):
        assert hint in reason
    assert "\n" not in reason
