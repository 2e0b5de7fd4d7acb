"""The state shared by the recipe, the Trainer callbacks and the error handlers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from worker.events import EventWriter


@dataclass
class RunContext:
    """What the callbacks and the error handlers share."""

    events: EventWriter
    rank: int = 0
    step: int = 0
    tokens_per_step: int = 0
    total_params: int = 0
    trainable_params: int = 0
    vocab_size: int = 0
    resumed_from: Path | None = None
    nonfinite_in_step: bool = False
    nonfinite_streak: int = 0
    nonfinite_since_log: bool = False
    diverged_at: int | None = None
    last_eval: tuple[float, float] | None = None
    last_eval_step: int | None = None
    train_loss: float | None = None
