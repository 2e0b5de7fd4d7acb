"""The ranks' side of the fence (``worker/fence.py``): at each step end, before any save at
that step, every rank checks how long its worker has been silent; all of them stop together
(all-reduced, or the others would hang in the next collective) and save nothing."""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import TrainerCallback

from worker import fence


class Fenced(Exception):
    """The worker fell silent past the fence: this attempt may already have been superseded."""


class FenceCallback(TrainerCallback):
    def __init__(self) -> None:
        self.path = os.environ.get(fence.FILE_ENV) or None
        self.seconds = float(os.environ.get(fence.SECONDS_ENV) or 0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not self.path or self.seconds <= 0:
            return  # run by hand: no worker to answer to
        silent = fence.silence(self.path)
        stale = silent is not None and silent > self.seconds
        flag = torch.tensor([1.0 if stale else 0.0], device=args.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() > 0:
            raise Fenced(
                f"fenced at step {state.global_step}: no word from the worker for more than "
                f"{self.seconds:.0f} s, so this attempt may have been handed to another worker; "
                "stopped without saving"
            )
