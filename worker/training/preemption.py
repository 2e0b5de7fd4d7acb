"""Save a checkpoint on SIGTERM before stopping (a Slurm time limit or preemption).

Switched on by ``PRETRAIN_SAVE_ON_SIGTERM=1`` in the environment (the Slurm executor sets it);
without it SIGTERM keeps its plain meaning (``failures.install_sigterm``: end event, exit).
SIGTERM only sets a flag; at the end of the next optimizer step the ranks agree on it (one
all-reduce, so every rank saves at the same step), the Trainer saves ``checkpoint-N``, and
once it is saved (and marked complete by the events callback) the plain handler ends the
process, so a resubmitted job resumes with ``--resume_from_checkpoint last``.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

ENV = "PRETRAIN_SAVE_ON_SIGTERM"


def enabled() -> bool:
    return os.environ.get(ENV, "").lower() in ("1", "true", "yes")


class SaveOnSigterm(TrainerCallback):
    """Must come after the events callback: its ``on_save`` marks the checkpoint complete."""

    def __init__(self) -> None:
        self.requested = False
        self.saving = False
        self.plain = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum: int, frame: Any) -> None:
        if self.saving:
            return  # already stopping at a checkpoint: let it finish
        if not self.requested:
            logger.warning("SIGTERM: saving a checkpoint at the end of this step, then stopping")
        self.requested = True

    def _agreed(self, args: Any) -> bool:
        flag = self.requested
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            device = args.device if torch.distributed.get_backend() == "nccl" else "cpu"
            t = torch.tensor([1 if flag else 0], device=device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flag = bool(t.item())
        return flag

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if not self.saving and self._agreed(args):
            self.saving = True
            control.should_save = True
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if self.saving:
            logger.warning("checkpoint-%d saved after SIGTERM; stopping", state.global_step)
            if callable(self.plain):
                self.plain(signal.SIGTERM, None)  # end event + exit, as without this callback
            os._exit(143)
        return control
