"""An experiment: one question asked once — a base run config, axes of values to vary, the
held-out sets that judge it, a forgetting cap and a budget — and the presets that ask the seed's.

The API expands it into runs (``backend/services/experiments/``); the CLI sends it as JSON. An
axis is any run-config field path (``training.learning_rate``), so every field the schema gains
is an axis at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

#: The most runs one experiment may have (a grid grows as the product of its axes).
MAX_RUNS = 64
#: ``section.field`` or deeper (``data.eval_sets.kn.max_characters``).
AXIS_PATTERN = r"^[a-z_]+(\.[A-Za-z0-9_.-]+)+$"
#: The forgetting cap when none is given: bits/char over step 0 on each retain set.
DEFAULT_FORGETTING_CAP = 0.05
#: What a run stopped by successive halving says (its status reason and the verdict's rungs).
STOPPED_EARLY = "stopped early at rung {rung} (bits/char {value:.4f}, cut-off {cutoff:.4f})"


class _Strict(BaseModel):
    model_config = {"extra": "forbid"}


class Budget(_Strict):
    """What each run may spend: tokens (turned into steps from each run's own tokens per step)
    or steps. Exactly one."""

    tokens: int | None = Field(default=None, ge=1, le=10**15)
    steps: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if (self.tokens is None) == (self.steps is None):
            raise ValueError('give exactly one of tokens or steps, e.g. {"steps": 200}')
        return self


class EarlyStopping(_Strict):
    """Successive halving on the target set's bits/char at the evaluation steps: at rung k
    (a run's k-th evaluation after step 0) only the best ``keep`` share of the runs goes on."""

    keep: float = Field(default=0.5, gt=0, lt=1, description="Share kept at each rung")
    max_rungs: int | None = Field(
        default=None, ge=1, le=64, description="Rungs to apply it at (empty: every evaluation)"
    )


class ExperimentSpec(_Strict):
    """Body of ``POST /api/experiments``."""

    name: str = Field(default="", max_length=200)
    preset: str | None = Field(default=None, max_length=64, description="Run preset under base")
    base: dict[str, Any] = Field(default_factory=dict, description="Run config every run shares")
    axes: dict[str, list[Any]] = Field(
        default_factory=dict,
        max_length=8,
        description="Field path -> values; the full grid of them (or see combinations)",
    )
    combinations: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=MAX_RUNS,
        description="Listed combinations (field path -> value) instead of the full grid",
    )
    target: str = Field(default="", max_length=32, description="The eval set being learned")
    retain: list[str] = Field(default_factory=list, max_length=8, description="Retain eval sets")
    forgetting_cap: float = Field(
        default=DEFAULT_FORGETTING_CAP,
        ge=0,
        le=100,
        description="Most bits/char a retain set may rise over step 0",
    )
    budget: Budget | None = None
    early_stopping: EarlyStopping | None = None


def seed_grid(demo_dir: Path) -> dict[str, Any]:
    """The seed's experiment on the tiny demo: {base, extended tokenizer} x {LoRA, full},
    Hindi as the target set and English as the retain set (UDHR text, held out of training)."""
    root = Path(demo_dir)
    corpus = root / "corpus"
    return {
        "name": "Seed: tokenizer x method",
        "preset": "tiny-demo",
        "base": {
            "data": {
                "eval_sets": {
                    "hi": {"path": str(corpus / "udhr_hi_Deva.txt"), "max_characters": 1500},
                    "en": {"path": str(corpus / "udhr_en_Latn.txt"), "max_characters": 1500},
                },
                "validation_split_percentage": 0,
            },
            "training": {
                "eval_prompts": {"hi": ["सभी मनुष्यों को"], "en": ["All human beings"]},
                "sample_max_new_tokens": 16,
            },
        },
        "axes": {
            "model.tokenizer_name_or_path": [
                str(root / "tiny-llama"),
                str(root / "tokenizer-extended"),
            ],
            "method.finetuning_type": ["lora", "full"],
        },
        "target": "hi",
        "retain": ["en"],
        "forgetting_cap": DEFAULT_FORGETTING_CAP,
        "budget": {"steps": 40},
    }


#: name -> label of the experiment presets (``GET /api/experiments/presets``).
EXPERIMENT_PRESETS: dict[str, str] = {"seed-2x2": "Seed: {base, extended tokenizer} x {LoRA, full}"}


def experiment_preset(name: str, demo_dir: Path) -> dict[str, Any]:
    """The preset's spec as a dict. Raises KeyError for an unknown name."""
    if name == "seed-2x2":
        return seed_grid(demo_dir)
    raise KeyError(name)
