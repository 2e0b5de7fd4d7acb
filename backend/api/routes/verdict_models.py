"""The verdict's answer shape (``GET /api/experiments/{id}/verdict``), for the OpenAPI schema and
the UI's generated types; ``backend/services/experiments/verdict.py`` builds exactly this."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from backend.models import UtcDatetime


class VerdictExperiment(BaseModel):
    id: str
    name: str
    status: str
    counts: dict[str, int]
    created_at: UtcDatetime
    launched_at: UtcDatetime | None = None
    owner: str | None = None


class SetFigures(BaseModel):
    """Bits per character of one set: the step-0 baseline, the end, and the change."""

    start_step: int
    start: float
    end_step: int
    end: float
    #: None while only the baseline exists.
    change: float | None = None


class StoppedEarly(BaseModel):
    rung: int
    step: int
    value: float
    cutoff: float


class Curve(BaseModel):
    step: list[int]
    tokens_seen: list[float | None]
    value: list[float]


class VerdictScore(BaseModel):
    """One task and metric of a run as its evaluate job stored it (never recomputed)."""

    task: str
    metric: str
    value: float | None = None
    stderr: float | None = None
    samples: int | None = None
    num_fewshot: int | None = None
    #: The checkpoint scored: the run's last one, or else the latest one that has this score.
    checkpoint: str
    step: int | None = None
    #: Whether ``checkpoint`` is the run's last checkpoint.
    final: bool
    job_id: str


class BenchmarkColumn(BaseModel):
    task: str
    metric: str


class VerdictRow(BaseModel):
    run_id: str
    name: str
    status: str
    status_reason: str | None = None
    stopped_early: StoppedEarly | None = None
    values: dict[str, Any]
    method: str
    trainable_params: int | None = None
    total_params: int | None = None
    tokens_seen: int | None = None
    step: int | None = None
    wall_seconds: float | None = None
    world_size: int | None = None
    device_hours: float | None = None
    attempts: int
    sets: dict[str, SetFigures]
    forgetting: dict[str, float | None]
    within_cap: bool | None = None
    same_text: bool
    eligible: bool
    #: The run's last checkpoint (what "score all runs" evaluates), None before its first.
    last_checkpoint: str | None = None
    #: Benchmark scores, one per task and metric (``Verdict.benchmarks`` are the columns).
    scores: list[VerdictScore]
    curve: Curve


class Winner(BaseModel):
    run_id: str
    name: str
    target_bits_per_char: float
    runner_up: str | None = None
    runner_up_bits_per_char: float | None = None
    margin: float | None = None


class RungRun(BaseModel):
    run_id: str
    step: int
    value: float
    stopped: bool


class Rung(BaseModel):
    rung: int
    kept: int
    cutoff: float | None = None
    runs: list[RungRun]


class SamplePrompt(BaseModel):
    set: str
    prompt: str
    mode: str
    #: run id -> its continuation.
    texts: dict[str, str]


class VerdictSamples(BaseModel):
    #: run id -> the step its samples are from (its last evaluation with samples).
    steps: dict[str, int | None]
    prompts: list[SamplePrompt]


class Verdict(BaseModel):
    experiment: VerdictExperiment
    spec: dict[str, Any]
    axes: list[str]
    target: str
    retain: list[str]
    forgetting_cap: float
    sets: list[str]
    rows: list[VerdictRow]
    #: Every task and metric any run has a score for, sorted: the table's benchmark columns.
    benchmarks: list[BenchmarkColumn]
    winner: Winner | None = None
    #: Why there is no winner ("no run is within the cap"), when there is none.
    no_winner: str | None = None
    #: retain set -> the runs on the Pareto front of (target, retain) bits/char at the end.
    pareto: dict[str, list[str]]
    rungs: list[Rung]
    warnings: list[str]
    samples: VerdictSamples
