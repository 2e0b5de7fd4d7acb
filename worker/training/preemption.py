"""Preemption checkpoint: SIGTERM (worker stop, ``docker compose restart``, ``scancel``) makes
every rank save a complete checkpoint at the next step boundary, then exit with
``EXIT_PREEMPTED`` so the panel resumes the run from it.

torchrun forwards SIGTERM to each rank (and the worker signals each rank itself), so the flag
goes up on every rank; ranks may see it at different steps, so the decision is all-reduced at
each step end and all of them save at the same step. The panel's *cancel* is SIGUSR2 (stop
now, no checkpoint), and SIGTERM before the training loop starts exits at once. The same stop
often arrives more than once (Slurm signals every process of the job, the batch shell forwards it,
torchrun forwards it again): TERMs within ``REPEAT_WINDOW_SECONDS`` of this process's first are
one request; a later one means "now".
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback

logger = logging.getLogger("pretrain")

#: EX_TEMPFAIL: "try again later" — the run was interrupted, not broken.
EXIT_PREEMPTED = 75


class Preempted(Exception):
    """Stopped by SIGTERM after saving a checkpoint."""


#: How long after this process's first SIGTERM another one is the same request, not "stop now".
REPEAT_WINDOW_SECONDS = 10.0


class _State:
    in_loop = False
    #: When the save was decided: a signal here, or another rank's (through the all-reduce).
    requested_at: float | None = None
    #: When this process itself first got SIGTERM.
    signalled_at: float | None = None
    saved_step: int | None = None


STATE = _State()


def install(immediate: Callable[[int, Any], None]) -> None:
    """SIGTERM → checkpoint at the next step while training; ``immediate`` (the cancel
    handler) otherwise."""

    def handler(signum: int, frame: Any) -> None:
        now = time.monotonic()
        if not STATE.in_loop:
            immediate(signum, frame)
            return
        if STATE.signalled_at is not None:
            if now - STATE.signalled_at > REPEAT_WINDOW_SECONDS:
                immediate(signum, frame)
            return  # the same stop, forwarded along another path
        STATE.signalled_at = now
        STATE.requested_at = STATE.requested_at or now
        print(
            "[pretrain] SIGTERM: saving a checkpoint at the next step, then stopping",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGTERM, handler)


class PreemptionCallback(TrainerCallback):
    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        STATE.in_loop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        STATE.in_loop = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        flag = torch.tensor([1.0 if STATE.requested_at is not None else 0.0], device=args.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() > 0:
            STATE.requested_at = STATE.requested_at or time.monotonic()
            STATE.saved_step = state.global_step
            control.should_save = True
            control.should_training_stop = True


def raise_if_preempted() -> None:
    """After ``trainer.train`` returns: a preempted run skips the final save and evaluation."""
    if STATE.saved_step is not None:
        took = time.monotonic() - (STATE.requested_at or time.monotonic())
        raise Preempted(
            f"checkpoint-{STATE.saved_step} saved {took:.1f} s after SIGTERM; resume from it"
        )
