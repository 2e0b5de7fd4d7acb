"""The worker protocol (``/api/internal``, worker token): heartbeat, claim, status, events, logs.

Every answer about a run says whether its cancel was requested, so a worker learns it on the
next shipment at the latest.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from backend.api.deps import SettingsDep, require_worker_token
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND
from backend.core.db import write_session
from backend.models import RunStatus
from backend.services import ingest, runs
from backend.services.ingest import INT32
from backend.services.notify import publish_event, publish_log, publish_run

router = APIRouter(
    prefix="/internal",
    tags=["internal"],
    dependencies=[Depends(require_worker_token)],
    responses={**AUTH},
)

RunId = Annotated[str, Field(max_length=32)]
# Bounded like the database columns (PostgreSQL integer), so a wild value is a 422, not a 500.
Attempt = Annotated[int, Field(ge=1, le=INT32)]


class HeartbeatIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    host: str = Field(default="", max_length=200)
    queue: str = Field(default="gpu", max_length=64)
    concurrency: int = Field(default=1, ge=0, le=1024)
    cpu_only: bool = False
    gpus: list[dict[str, Any]] = Field(default_factory=list, max_length=64)
    current_runs: list[RunId] = Field(default_factory=list, max_length=1024)


class HeartbeatOut(BaseModel):
    cancel: list[str]


class ClaimIn(BaseModel):
    attempt: Attempt
    worker: str = Field(min_length=1, max_length=200)


class ClaimOut(BaseModel):
    config: dict[str, Any]
    attempt: int
    resume_from: str | None
    resume_path: str | None = Field(description="Absolute dir of the checkpoint to resume from")
    run_dir: str
    output_dir: str


class StatusIn(BaseModel):
    attempt: Attempt
    status: Literal["running", "succeeded", "failed", "cancelled"]
    reason: str | None = Field(default=None, max_length=2000)
    pid: int | None = Field(default=None, ge=0, le=INT32)


class CancelAnswer(BaseModel):
    cancel_requested: bool


class ShippedEvent(BaseModel):
    """One events.jsonl line; fields beyond these are kept as they are."""

    model_config = ConfigDict(extra="allow")
    seq: int = Field(ge=0, le=INT32)
    kind: str = Field(max_length=32)
    step: int | None = Field(default=None, ge=-INT32, le=INT32)
    time: float | None = None


class EventsIn(BaseModel):
    attempt: Attempt
    events: list[ShippedEvent] = Field(max_length=10_000)


class EventsOut(CancelAnswer):
    accepted: int


class LogsIn(BaseModel):
    attempt: Attempt
    offset: int = Field(ge=0, le=2**62, description="Byte offset of text in the attempt's log file")
    text: str = Field(max_length=8 * 1024 * 1024)


class LogsOut(CancelAnswer):
    accepted_until: int


@router.post("/workers/heartbeat", response_model=HeartbeatOut)
def heartbeat(body: HeartbeatIn, settings: SettingsDep) -> HeartbeatOut:
    with write_session(settings) as session:
        cancel = ingest.heartbeat(session, body.model_dump())
        session.commit()
    return HeartbeatOut(cancel=cancel)


@router.post("/runs/{run_id}/claim", response_model=ClaimOut, responses={**NOT_FOUND, **CONFLICT})
def claim(run_id: str, body: ClaimIn, settings: SettingsDep) -> ClaimOut:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ingest.claim(run, body.attempt, body.worker)
        resume_path = runs.resume_path(session, run)
        session.commit()
    publish_run(run)
    return ClaimOut(
        config=run.config,
        attempt=run.attempt,
        resume_from=run.resume_from,
        resume_path=resume_path,
        run_dir=str(runs.run_dir(settings, run.id)),
        output_dir=run.output_dir,
    )


@router.post(
    "/runs/{run_id}/status", response_model=CancelAnswer, responses={**NOT_FOUND, **CONFLICT}
)
def report_status(run_id: str, body: StatusIn, settings: SettingsDep) -> CancelAnswer:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        changed = ingest.report_status(
            run, body.attempt, RunStatus(body.status), body.reason, body.pid
        )
        session.commit()
    if changed:
        publish_run(run)
    return CancelAnswer(cancel_requested=ingest.cancel_requested(run, body.attempt))


@router.post("/runs/{run_id}/events", response_model=EventsOut, responses=NOT_FOUND)
def ship_events(run_id: str, body: EventsIn, settings: SettingsDep) -> EventsOut:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        raw = [e.model_dump(exclude_unset=True) for e in body.events]
        fresh = ingest.store_events(session, run, body.attempt, raw)
        session.commit()
    for event in fresh:
        publish_event(event)
    if fresh:
        publish_run(run)
    return EventsOut(
        accepted=len(fresh), cancel_requested=ingest.cancel_requested(run, body.attempt)
    )


@router.post("/runs/{run_id}/logs", response_model=LogsOut, responses=NOT_FOUND)
def ship_logs(run_id: str, body: LogsIn, settings: SettingsDep) -> LogsOut:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        until, chunk = ingest.store_log(session, run, body.attempt, body.offset, body.text)
        session.commit()
    if chunk is not None:
        publish_log(chunk)
    return LogsOut(
        accepted_until=until, cancel_requested=ingest.cancel_requested(run, body.attempt)
    )
