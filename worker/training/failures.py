"""How a run ends badly: error classes, exception → (status, reason, exit code), SIGTERM."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from worker.data.errors import DataError
from worker.exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_DIVERGED,
    EXIT_FAILED,
    EXIT_OOM,
)
from worker.training import preemption
from worker.training.fencing import Fenced
from worker.training.preemption import EXIT_PREEMPTED, Preempted
from worker.training.run_state import RunContext

OOM_HINT = (
    "try a smaller --per_device_train_batch_size (with more --gradient_accumulation_steps), "
    "--gradient_checkpointing, or DeepSpeed ZeRO-3 (--deepspeed worker/ds_configs/ds_zero3.json)"
)


class InputError(Exception):
    """Bad arguments or data: exit 2 with a message that names the flag."""


class DivergedError(Exception):
    """NaN/inf loss on too many consecutive steps."""


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError | MemoryError) and (
        "out of memory" in text.lower()
        or "can't allocate memory" in text
        or isinstance(exc, MemoryError)
    )


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain (an OSError, or safetensors' "No space left on device")."""
    seen: BaseException | None = exc
    while seen is not None:
        if (
            getattr(seen, "errno", None) == errno.ENOSPC
            or "no space left on device" in str(seen).lower()
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: Less room than this on the output's volume when a run fails: the failure was the full disk
#: (torch's zip writer says only "unexpected pos", not ENOSPC).
FULL_BYTES = 1 << 20


def free_bytes(path: Path) -> int:
    """What this process may still write there (root may use the blocks reserved for it)."""
    st = os.statvfs(path)
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize


def volume_full(output_dir: Path) -> bool:
    try:
        return free_bytes(mount_point(output_dir)) < FULL_BYTES
    except OSError:
        return False


def mount_point(path: Path) -> Path:
    """The volume ``path`` lies on (its mount point)."""
    here = path.resolve()
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def disk_full_reason(output_dir: Path, step: int | None, remove: bool) -> str:
    """Remove (``remove``: rank 0) the checkpoint a full disk cut short, and say where, how much
    is free, and what to do. A checkpoint is complete once its run info is written
    (``on_save``); one without it was being written."""
    from worker.training.checkpoints import RUN_INFO  # checkpoints.py imports this module

    partial = output_dir / f"checkpoint-{step}" if step is not None else None
    where = output_dir
    if partial is not None and partial.is_dir() and not (partial / RUN_INFO).exists():
        if remove:
            shutil.rmtree(partial, ignore_errors=True)
        where = partial
    volume = mount_point(output_dir)
    try:
        free = free_bytes(volume)
    except OSError:
        free = 0
    room = f"{free / 2**30:.1f} GB" if free >= 2**30 else f"{free / 2**20:.1f} MB"
    removed = " (the partial checkpoint was removed)" if where != output_dir else ""
    return (
        f"disk full on {volume} ({where}): {room} free; free space there or lower "
        f"--save_total_limit{removed}"
    )


def classify(exc: BaseException) -> tuple[str, str, int]:
    """(end status, one-line reason, exit code) for an exception that ended the run (a full
    disk is told apart by the caller, which knows where it writes: ``disk_full_reason``)."""
    if isinstance(exc, InputError | DataError):  # DataError: bad data met while streaming
        return "failed", str(exc), EXIT_BAD_INPUT
    if isinstance(exc, Preempted):
        return "preempted", str(exc), EXIT_PREEMPTED
    if isinstance(exc, Fenced):
        return "cancelled", str(exc), EXIT_CANCELLED
    if isinstance(exc, DivergedError):
        return "diverged", str(exc), EXIT_DIVERGED
    if is_oom(exc):
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        return "oom", f"out of memory ({first}); {OOM_HINT}", EXIT_OOM
    return "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}", EXIT_FAILED


def failure_note_path(output_dir: Path, rank: int) -> Path:
    return output_dir / f".rank-{rank}-failure.json"


def write_failure_note(output_dir: Path, rank: int, status: str, reason: str) -> None:
    """A non-zero rank leaves its failure where rank 0's SIGTERM handler will find it."""
    with contextlib.suppress(OSError):
        failure_note_path(output_dir, rank).write_text(
            json.dumps({"rank": rank, "status": status, "reason": reason})
        )


def install_sigterm(run: RunContext, output_dir: Path) -> None:
    """SIGTERM (cancel, or torchrun stopping us because another rank failed) → end event, exit."""

    started = time.time() - 1

    def handler(signum: int, frame: Any) -> None:
        status, reason = "cancelled", f"cancelled: received {signal.Signals(signum).name}"
        # If another rank failed first, torchrun SIGTERMs us: report its failure instead.
        for note in sorted(output_dir.glob(".rank-*-failure.json")):
            with contextlib.suppress(Exception):
                if note.stat().st_mtime < started:
                    continue  # left by an earlier attempt
                info = json.loads(note.read_text())
                status, reason = info["status"], f"rank {info['rank']}: {info['reason']}"
                break
        run.events.end(status, reason, run.step)
        run.events.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(EXIT_CANCELLED if status == "cancelled" else EXIT_FAILED)

    # SIGUSR2 is the panel's cancel; SIGTERM saves a checkpoint first while training
    # (worker.training.preemption) and falls back to this handler otherwise.
    signal.signal(signal.SIGUSR2, handler)
    preemption.install(handler)
