"""The state shared by the recipe, the Trainer callbacks and the error handlers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    #: How the tokenizer's new tokens got rows (``modeling.extend_vocabulary``), or None.
    vocabulary: dict[str, Any] | None = None
    resumed_from: Path | None = None
    nonfinite_in_step: bool = False
    nonfinite_streak: int = 0
    nonfinite_since_log: bool = False
    diverged_at: int | None = None
    #: Why it diverged, with the numbers (None: NaN/inf, the step rule's own message).
    diverged_reason: str | None = None
    last_eval: tuple[float, float] | None = None
    last_eval_step: int | None = None
    train_loss: float | None = None
    #: Per data source: name, weight, files, bytes, documents, tokens, blocks, train/eval blocks.
    data_sources: list[dict[str, Any]] = field(default_factory=list)
    #: Per held-out set: name, role, path, documents, characters, bytes, tokens, windows.
    eval_sets: list[dict[str, Any]] = field(default_factory=list)
    #: The token between documents: id, token, why (``worker/data/encoding.document_separator``).
    document_separator: dict[str, Any] | None = None
    #: The current phase (cpt_contract.events.PHASES) and when it began (time.time()).
    phase: str | None = None
    phase_since: float = 0.0
    #: A staged run's plan (``worker/training/stages.py``) and the index of the stage in force.
    stages: list[dict[str, Any]] | None = None
    stage: int | None = None

    def enter_phase(self, name: str, step: int) -> float:
        """Emit a ``phase`` event that also times the phase it ends; returns those seconds."""
        now = time.time()
        ended = now - self.phase_since if self.phase is not None else 0.0
        if name != self.phase:
            previous = {"previous": self.phase, "previous_seconds": round(ended, 3)}
            # The event carries the same clock reading the phase is timed from.
            self.events.phase(name, step, time=now, **(previous if self.phase else {}))
            self.phase, self.phase_since = name, now
        return ended
