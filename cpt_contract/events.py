"""The events of ``<output_dir>/events.jsonl``: kinds and the training script's phases.

``worker/events.py`` (the writer inside the training script, which imports nothing of the panel)
keeps its own copy of ``KINDS`` and ``PHASES``; ``tests/contract/test_events.py`` proves they are
equal. The API folds phases into a run's progress, the UI names them (``contract.ts``).
"""

from __future__ import annotations

KINDS = ("start", "log", "eval", "checkpoint", "end", "phase")

#: What a ``phase`` event's ``phase`` says the script does from its ``time`` on, in the order a
#: run goes through them; ``evaluating`` and ``saving`` alternate with ``training``.
PHASES = ("preparing_data", "loading_model", "training", "evaluating", "saving")

#: The phases whose measured seconds the ETA adds per remaining evaluation or checkpoint.
PAUSE_PHASES = ("evaluating", "saving")
