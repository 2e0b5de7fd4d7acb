"""The events of ``<output_dir>/events.jsonl``: kinds, the training script's phases, the
evaluation's metric names, samples.

``worker/events.py`` (the writer inside the training script, which imports nothing of the panel)
keeps its own copy of ``KINDS`` and ``PHASES``; ``tests/contract/test_events.py`` proves they are
equal. The API reads samples and warnings through the models here and folds phases into a run's
progress; the UI and the CLI use the names.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KINDS = ("start", "log", "eval", "checkpoint", "end", "sample", "warning", "phase", "stage")

#: What a ``phase`` event's ``phase`` says the script does from its ``time`` on, in the order a
#: run goes through them; ``evaluating`` and ``saving`` alternate with ``training``.
PHASES = ("preparing_data", "loading_model", "training", "evaluating", "saving")

#: The phases whose measured seconds the ETA adds per remaining evaluation or checkpoint.
PAUSE_PHASES = ("evaluating", "saving")


#: The held-out set made of the seed's ``validation_file`` / ``validation_split_percentage``.
VALIDATION_SET = "validation"

#: What each eval set reports, as ``eval_<set>_<what>`` (HF's naming for several eval datasets).
EVAL_METRICS = ("loss", "perplexity", "bits_per_char", "bits_per_byte")

EvalRole = Literal["retain", "target"]
SampleMode = Literal["greedy", "sampled"]


def eval_metric(set_name: str, what: str) -> str:
    """``eval_<set>_<what>``, e.g. ``eval_en_bits_per_char``."""
    return f"eval_{set_name}_{what}"


class EvalSetInfo(BaseModel):
    """One entry of the ``start`` event's ``eval_sets``: what the set's numbers are over."""

    model_config = ConfigDict(extra="allow")
    name: str
    role: EvalRole | None = None
    path: str | None = None
    documents: int
    characters: int
    bytes: int
    tokens: int
    windows: int
    #: False only for the packed ``validation_split_percentage`` blocks (characters from decoding).
    exact: bool = True
    #: The budget's cut, and sha256 of the scored documents: two runs with equal digests scored
    #: exactly the same text (``characters``: ``cpt_contract/text.py``).
    truncated: bool = False
    text_sha256: str | None = None
    max_documents: int | None = None
    max_characters: int | None = None


class SampleEvent(BaseModel):
    """A generation at an evaluation: ``{"kind": "sample", "step", "set", "prompt", "text", "mode"}``."""

    model_config = ConfigDict(extra="allow")
    seq: int
    kind: Literal["sample"] = "sample"
    step: int
    set: str = Field(description="The eval_prompts group the prompt belongs to")
    prompt: str
    text: str = Field(description="The continuation only (the prompt not repeated)")
    mode: SampleMode
    time: float | None = None


#: ``warning`` events' ``code``: an evaluation took more than ~10 % of the time between evals.
WARNING_EVAL_BUDGET = "eval_budget"
