"""Worker decisions that need no process: fit checks, outcome mapping, parsing, GPU leases.

Everything here is real code on real files; nothing is mocked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cpt_cli.runs import parse_set
from cpt_contract.outcomes import RETRYABLE_KINDS, FailureKind
from cpt_contract.roots import Roots
from cpt_contract.runconfig.schema import RunConfig
from worker.attempt import gpu
from worker.attempt.context import Refused
from worker.attempt.files import last_error_line
from worker.attempt.local import check_fits
from worker.attempt.outcome import outcome_from
from worker.attempt.shipper import _complete_utf8


def _config(**training: object) -> RunConfig:
    return RunConfig.model_validate(
        {"model": {"model_name_or_path": "/m"}, "data": {"dataset_dir": "/d"}, "training": training}
    )


def test_fp16_is_refused_on_cpu_with_a_clear_reason() -> None:
    with pytest.raises(Refused, match="fp16 needs a GPU; choose bf16 or fp32"):
        check_fits(_config(precision="fp16"), use_cpu=True, gpu_count=0)
    check_fits(_config(precision="bf16"), use_cpu=True, gpu_count=0)


def test_more_processes_than_gpus_is_refused() -> None:
    config = _config()
    config.launch.nproc_per_node = 4
    with pytest.raises(Refused, match="nproc_per_node=4 but this worker has 2 GPUs"):
        check_fits(config, use_cpu=False, gpu_count=2)
    check_fits(config, use_cpu=False, gpu_count=4)


def test_outcome_prefers_the_end_event_then_the_exit_code(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    log.write_text(
        "step 1\nTraceback (most recent call last):\n  File x\n"
        "[rank0]: ValueError: block_size 99999 exceeds the model maximum\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
    )
    end = {"kind": "end", "status": "diverged", "reason": "loss is NaN for 3 steps"}
    assert outcome_from(end, 3, False, log).status == "failed"
    assert outcome_from(end, 3, False, log).reason == "diverged: loss is NaN for 3 steps"
    assert (
        outcome_from({"status": "succeeded", "reason": "training finished"}, 0, False, log).status
        == "succeeded"
    )
    assert outcome_from(None, 0, True, log).status == "cancelled"
    assert outcome_from(None, -9, False, log).reason.startswith("killed")  # type: ignore[union-attr]
    failed = outcome_from(None, 1, False, log)
    assert failed.reason == "exit code 1: ValueError: block_size 99999 exceeds the model maximum"
    assert last_error_line(tmp_path / "missing.log") is None
    # The kind is decided here, typed, and is what the API restarts by (never the reason's text).
    kinds = {
        "diverged": outcome_from(end, 3, False, log).kind,
        "killed": outcome_from(None, -9, False, log).kind,
        "exit 1": failed.kind,
        "exit 2": outcome_from(None, 2, False, log).kind,
        "bad input": outcome_from({"status": "failed", "reason": "--x"}, 2, False, log).kind,
        "preempted": outcome_from({"status": "preempted", "reason": "saved"}, 75, False, log).kind,
        "disk full": outcome_from(
            {"status": "disk_full", "reason": "disk full on /x"}, 1, False, log
        ).kind,
    }
    assert kinds == {
        "diverged": FailureKind.diverged,
        "killed": FailureKind.crashed,
        "exit 1": FailureKind.error,
        "exit 2": FailureKind.bad_input,
        "bad input": FailureKind.bad_input,
        "preempted": FailureKind.preempted,
        "disk full": FailureKind.disk_full,
    }
    assert [k for k, v in kinds.items() if v in RETRYABLE_KINDS] == ["killed", "preempted"]


def test_a_restart_is_decided_by_the_failure_kind() -> None:
    """An interruption restarts; the same kind twice at the same step does not; the reason's
    words play no part (two different texts of one kind are the same failure)."""
    from backend.models import Run
    from backend.services.autoresume import end_attempt
    from cpt_contract.statuses import RunStatus

    run = Run(
        id="r-1",
        name="r",
        queue="q",
        config={"training": {"max_restarts": 5}},
        output_dir="/o",
        status=RunStatus.running,
        step=40,
    )
    assert end_attempt(
        run, RunStatus.failed, "stalled: no step for 601 s", kind=FailureKind.stalled
    )
    assert run.status == RunStatus.queued and run.attempt_log[-1]["kind"] == "stalled"
    run.status = RunStatus.running
    assert not end_attempt(run, RunStatus.failed, "no step for 900 s", kind=FailureKind.stalled)
    assert run.status == RunStatus.failed and run.failure_kind == "stalled"
    assert "same failure (stalled) happened twice at step 40" in (run.status_reason or "")
    run.status, run.step = RunStatus.running, 41
    assert not end_attempt(
        run, RunStatus.failed, "worker stopped: interrupted", kind=FailureKind.oom
    )
    assert run.failure_kind == "oom" and "not restarted" not in (run.status_reason or "")


def test_resume_is_decided_by_the_training_script(tmp_path: Path) -> None:
    """The worker passes ``last``/``checkpoint-N`` through; only pretrain.py picks the checkpoint."""
    from worker.training.checkpoints import RUN_INFO, resolve_resume
    from worker.training.failures import InputError

    assert resolve_resume("last", tmp_path) is None  # nothing yet: start fresh
    # A kill mid-save leaves a checkpoint without trainer_state.json: never chosen.
    (tmp_path / "checkpoint-14").mkdir()
    assert resolve_resume("last", tmp_path) is None
    for step in (4, 12, 8):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        (tmp_path / f"checkpoint-{step}" / RUN_INFO).write_text('{"world_size": 1}')
    assert resolve_resume("last", tmp_path) == tmp_path / "checkpoint-12"
    assert resolve_resume("checkpoint-4", tmp_path) == (tmp_path / "checkpoint-4").resolve()
    with pytest.raises(InputError, match="incomplete"):
        resolve_resume("checkpoint-14", tmp_path)
    with pytest.raises(InputError, match="no such checkpoint"):
        resolve_resume("checkpoint-99", tmp_path)


def test_set_values_are_yaml_scalars() -> None:
    parsed = parse_set(
        [
            "training.max_steps=12",
            "training.learning_rate=1e-3",
            "launch.deepspeed=none",
            "data.streaming=true",
            "model.config_name=",
        ]
    )
    assert parsed == {
        "training": {"max_steps": 12, "learning_rate": 1e-3},
        "launch": {"deepspeed": "none"},
        "data": {"streaming": True},
        "model": {"config_name": None},
    }


def test_incomplete_utf8_waits_for_the_next_batch() -> None:
    text = "loss ಕನ್ನಡ".encode()
    assert _complete_utf8(text) == text
    assert _complete_utf8(text[:-1]) == text[:-3]
    assert _complete_utf8(b"abc") == b"abc"


def test_nvidia_smi_parsing_and_gpu_leases(tmp_path: Path) -> None:
    gpus = gpu.parse_nvidia_smi(
        "0, NVIDIA H100 80GB HBM3, 81559, 3, 0\n1, NVIDIA H100 80GB HBM3, 81559, 1200, 97\n"
    )
    assert [(g.index, g.memory_total_mb, g.utilization_pct) for g in gpus] == [
        (0, 81559, 0),
        (1, 81559, 97),
    ]
    first = gpu.try_allocate(tmp_path, gpus, 1, "r-a")
    assert first is not None and first.cuda_visible_devices == "0"
    # flock is per open file: a second process must see GPU 0 taken (as pool processes do).
    probe = (
        "import sys; from pathlib import Path; from worker.attempt import gpu;"
        f"g = gpu.parse_nvidia_smi({'0, a, 1, 0, 0'!r} + chr(10) + {'1, b, 1, 0, 0'!r});"
        f"lease = gpu.try_allocate(Path({str(tmp_path)!r}), g, 2, 'r-b'); print('none' if lease is None else lease.cuda_visible_devices);"
        f"one = gpu.try_allocate(Path({str(tmp_path)!r}), g, 1, 'r-b'); print(one.cuda_visible_devices)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    ).stdout.split()
    assert out == ["none", "1"]
    assert [g.run_id for g in gpu.holders(tmp_path, gpus)] == ["r-a", None]
    first.release()
    assert gpu.try_allocate(tmp_path, gpus, 2, "r-c") is not None


def test_the_worker_checks_the_paths_again_before_launching(tmp_path: Path) -> None:
    """A link that appears after the API's check: the worker refuses to launch."""
    from tests.support.api import make_assets
    from worker.attempt.context import check_paths

    assets = make_assets(tmp_path / "assets")
    config = RunConfig.model_validate(
        {
            "model": {"model_name_or_path": str(assets["model"])},
            "data": {"dataset_dir": str(assets["corpus"])},
        }
    )
    roots = Roots((assets["root"].resolve(),))
    check_paths(config, roots)
    (assets["corpus"] / "late.txt").symlink_to("/etc/hostname")
    with pytest.raises(Refused, match=r"data\.dataset_dir: .*late\.txt"):
        check_paths(config, roots)


def test_follow_prints_each_eval_once_with_every_set_s_bits_per_char() -> None:
    from cpt_cli.follow import RunView

    view = RunView("r-1")

    def ev(seq: int, step: int, kn: float, en: float) -> dict[str, object]:
        data = {"eval_loss": 3.0, "eval_kn_bits_per_char": kn, "eval_en_bits_per_char": en}
        return {"seq": seq, "attempt": 1, "kind": "eval", "step": step, "data": data}

    view.update_metric(ev(2, 0, 3.5, 1.25))
    view.update_metric(ev(9, 10, 3.0, 1.27))
    view.update_metric(ev(9, 10, 3.0, 1.27))  # replayed after a reconnect: not printed again
    assert view.pending == [
        "eval step 0  kn 3.500 bits/char  en 1.250 bits/char",
        "eval step 10  kn 3.000 bits/char (-0.500)  en 1.270 bits/char (+0.020)",
    ]
