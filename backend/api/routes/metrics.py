"""A run's metric series, raw events and log text (all read from the database)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from backend.api.deps import SessionDep, require_api_token
from backend.api.routes.common import AUTH, NOT_FOUND
from backend.models import EventPublic
from backend.services import comparability, queries, runs
from cpt_contract.events import KINDS, SampleMode
from cpt_contract.limits import INT32

router = APIRouter(
    tags=["metrics"], dependencies=[Depends(require_api_token)], responses={**AUTH, **NOT_FOUND}
)


class Series(BaseModel):
    step: list[int]
    value: list[float]
    tokens_seen: list[float | None]
    time: list[float | None]


class AttemptStart(BaseModel):
    attempt: int
    step: int
    tokens_seen: int | None = None


class StageStart(BaseModel):
    index: int
    name: str
    method: str
    step: int
    tokens_seen: int | None = None


class Metrics(BaseModel):
    series: dict[str, Series]
    keys: list[str]
    #: Where each resumed attempt started (its start event): the charts' vertical lines.
    attempts: list[AttemptStart] = []
    #: Where each stage of a staged run after the first begins (``stage`` events): lines too.
    stages: list[StageStart] = []


class LogText(BaseModel):
    attempt: int
    offset: int
    next_offset: int
    size: int
    text: str


@router.get("/runs/{run_id}/metrics", response_model=Metrics)
def get_metrics(
    run_id: str,
    session: SessionDep,
    keys: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated, e.g. loss,eval_loss")
    ] = None,
    step_min: Annotated[int | None, Query(ge=-INT32, le=INT32)] = None,
    step_max: Annotated[int | None, Query(ge=-INT32, le=INT32)] = None,
    max_points: Annotated[int, Query(ge=10, le=100_000)] = 1000,
    attempt: Annotated[int | None, Query(ge=1, le=INT32)] = None,
) -> Any:
    run = runs.get_run(session, run_id)
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    out = queries.metric_series(session, run, wanted, step_min, step_max, max_points, attempt)
    # Encoded here, not validated again against ``Metrics`` (the store builds exactly that
    # shape): for a chart's 5 x 1,000 points the model's re-validation and dump cost more than
    # the read itself. ``Metrics`` still documents the answer in the OpenAPI schema.
    return Response(orjson.dumps(out), media_type="application/json")


@router.get("/runs/{run_id}/events", response_model=list[EventPublic])
def get_events(
    run_id: str,
    session: SessionDep,
    after_seq: Annotated[int, Query(ge=-1, le=INT32)] = -1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    kind: Annotated[
        Literal[KINDS] | None,  # type: ignore[valid-type]
        Query(description="Only events of this kind, e.g. warning or start"),
    ] = None,
) -> Any:
    runs.get_run(session, run_id)
    return queries.events_after(session, run_id, after_seq, limit, kind)


class Sample(BaseModel):
    seq: int | None
    step: int
    attempt: int
    time: float | None
    set: str = Field(description="The eval_prompts group")
    prompt: str
    text: str = Field(description="The continuation (without the prompt)")
    mode: SampleMode


class Samples(BaseModel):
    steps: list[int] = Field(description="Every step with samples, ascending")
    samples: list[Sample]


@router.get("/runs/{run_id}/samples", response_model=Samples)
def get_samples(
    run_id: str,
    session: SessionDep,
    step: Annotated[int | None, Query(description="Only this step's samples")] = None,
) -> Any:
    """Generation samples written at each evaluation (greedy and sampled per prompt)."""
    run = runs.get_run(session, run_id)
    return queries.samples(session, run, step)


@router.get("/runs/{run_id}/logs", response_model=LogText)
def get_logs(
    run_id: str,
    session: SessionDep,
    offset: Annotated[
        int, Query(ge=0, le=2**62, description="Byte offset in the attempt's log")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=4 * 1024 * 1024, description="Bytes")] = 65536,
    tail: Annotated[int | None, Query(ge=0, le=100_000, description="Last N lines")] = None,
    attempt: Annotated[
        int | None, Query(ge=1, le=INT32, description="Default: the current one")
    ] = None,
) -> Any:
    run = runs.get_run(session, run_id)
    return queries.log_slice(session, run_id, attempt or run.attempt, offset, limit, tail)


class TextComparison(BaseModel):
    #: Per held-out set the runs did not all score the same text on, why (names the difference).
    differences: list[str]


@router.get("/compare/text", response_model=TextComparison)
def compare_text(
    session: SessionDep,
    run_id: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]], Query(min_length=1, max_length=32)
    ],
) -> TextComparison:
    """Whether the runs scored the same text on each held-out set, by the one rule Compare and
    the verdict share (``backend/services/comparability.py``)."""
    chosen = [runs.get_run(session, rid) for rid in dict.fromkeys(run_id)]
    infos = {r.id: comparability.set_infos(session, r.id) for r in chosen}
    names = list(dict.fromkeys(n for r in chosen for n in infos[r.id]))
    found = (
        comparability.text_difference(n, [(r.name or r.id, infos[r.id].get(n)) for r in chosen])
        for n in names
    )
    return TextComparison(differences=[d for d in found if d])
