"""How long one evaluation will take, split into scoring the held-out text and generating the
samples, before the run is queued (the launch form's estimate).

Three bases, the first that applies:

* ``measured_eval``: the last succeeded run of the same model on the same queue whose ``eval``
  events carry ``eval_score_seconds``/``eval_sample_seconds``/``eval_sample_tokens`` (written by
  ``worker/training/callbacks.py``): its seconds per character scored and per token generated;
* ``measured_training``: that run's (or, lacking it, any run of the same model on the queue)
  training speed in tokens/s, read as the device's effective speed: training costs ~6 FLOPs
  per parameter and token, scoring (a forward pass) ~2;
* ``model_size``: the model's parameters and the budget with the assumed effective speeds
  below for the queue's kind (CPU-only or GPU).

Generating is one token at a time, so its speed is bounded by reading every weight and by the
per-layer overhead of each forward step, not by the device's arithmetic; scoring is batched.
A sampling budget that takes longer than scoring the text is flagged: the evaluation then
mostly waits on samples (fewer prompts or a lower ``sample_max_new_tokens`` fix it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Basis = Literal["measured_eval", "measured_training", "model_size"]

#: Effective FLOP/s of a forward pass when nothing was measured (fp32 torch on a few CPU cores;
#: a 16-bit data-centre GPU at about a quarter of its peak).
ASSUMED_FLOPS = {"cpu": 2e10, "gpu": 5e13}
#: Bytes/s read from memory while generating one token (all weights every step).
ASSUMED_BANDWIDTH = {"cpu": 1e10, "gpu": 1e12}
#: Seconds of fixed overhead per decoder layer and generated token (kernel launches, Python).
LAYER_OVERHEAD = {"cpu": 2e-4, "gpu": 1.5e-4}
#: Seconds per generated token outside the layers (logits processing, sampling, the loop).
TOKEN_OVERHEAD = {"cpu": 2e-3, "gpu": 5e-3}
#: Tokens per character when no scan of the run's data measured it (between English, ~0.25
#: with a byte-level BPE, and a script the tokenizer does not know, ~1).
ASSUMED_TOKENS_PER_CHAR = 0.5
#: Training costs ~6 FLOPs per parameter and token (forward 2, backward 4); a forward pass 2.
TRAIN_FLOPS_PER_PARAM = 6
FORWARD_FLOPS_PER_PARAM = 2


@dataclass
class Measured:
    """One run's split evaluation: seconds per evaluation and what they covered."""

    score_seconds: float
    characters: int
    sample_seconds: float
    sample_tokens: int


@dataclass
class EvalTime:
    scoring_seconds: float | None
    sampling_seconds: float | None
    #: How each part was estimated.
    scoring_basis: Basis
    sampling_basis: Basis
    tokens_per_char: float
    tokens_per_char_measured: bool


def decode_seconds_per_token(
    params: int, layers: int, weight_bytes: int, flops: float, kind: str
) -> float:
    """One generated token: the larger of its arithmetic and reading every weight, plus the
    per-layer and per-token overheads."""
    compute = FORWARD_FLOPS_PER_PARAM * params / flops
    memory = params * weight_bytes / ASSUMED_BANDWIDTH[kind]
    return max(compute, memory) + layers * LAYER_OVERHEAD[kind] + TOKEN_OVERHEAD[kind]


def eval_time(
    *,
    characters: int | None,
    sample_tokens: int,
    params: int | None,
    layers: int | None,
    weight_bytes: int,
    cpu_only: bool,
    measured: Measured | None,
    training_tokens_per_second: float | None,
    tokens_per_char: float | None,
) -> EvalTime | None:
    """Scoring and sampling seconds of one evaluation (None: not enough is known); each part
    from the best basis it has."""
    ratio = tokens_per_char or ASSUMED_TOKENS_PER_CHAR
    kind = "cpu" if cpu_only else "gpu"
    basis: Basis = "model_size"
    flops = ASSUMED_FLOPS[kind]
    if training_tokens_per_second and params:
        flops = TRAIN_FLOPS_PER_PARAM * params * training_tokens_per_second
        basis = "measured_training"
    scoring: float | None = None
    scoring_basis = sampling_basis = basis
    if measured is not None and measured.characters > 0 and characters:
        scoring = measured.score_seconds * characters / measured.characters
        scoring_basis = "measured_eval"
    elif params and characters:
        scoring = FORWARD_FLOPS_PER_PARAM * params * characters * ratio / flops
    sampling: float | None = None
    if not sample_tokens:
        sampling = 0.0
    elif measured is not None and measured.sample_tokens > 0:
        sampling = measured.sample_seconds / measured.sample_tokens * sample_tokens
        sampling_basis = "measured_eval"
    elif params and layers:
        per_token = decode_seconds_per_token(params, layers, weight_bytes, flops, kind)
        sampling = per_token * sample_tokens
    if scoring is None and sampling is None:
        return None
    return EvalTime(
        scoring, sampling, scoring_basis, sampling_basis, ratio, tokens_per_char is not None
    )
