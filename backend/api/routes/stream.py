"""Server-sent events: one run's status/metrics/logs, every run's changes, and one job's view
(status, queue position and a download's measured progress: ``backend/services/job_stream.py``).

``?token=`` is accepted because ``EventSource`` cannot send headers. The stream subscribes to the
bus *before* reading the snapshot, so nothing published in between is lost. ``after_seq`` (or
the ``Last-Event-ID`` header EventSource sends on reconnect) replays stored metrics first.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from sqlmodel import Session
from sse_starlette import EventSourceResponse, ServerSentEvent

from backend.api.deps import require_api_token_or_query
from backend.api.routes.common import AUTH, NOT_FOUND
from backend.core.db import get_engine
from backend.models import EventPublic
from backend.services import job_stream, jobs, queries, runs
from backend.services.bus import RUNS_TOPIC, Subscription, bus, job_topic, run_topic
from cpt_contract.limits import INT32

router = APIRouter(
    tags=["stream"], dependencies=[Depends(require_api_token_or_query)], responses=AUTH
)

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "A stream of server-sent events"}
}
REPLAY_PAGE = 1000
_SEQ = re.compile(r"^[0-9]{1,9}$")


def _snapshot(run_id: str) -> dict[str, Any]:
    with Session(get_engine()) as session:
        return runs.to_public(runs.get_run(session, run_id)).model_dump(mode="json")


def _job_snapshot(job_id: str) -> dict[str, Any]:
    with Session(get_engine()) as session:
        return job_stream.detail(session, jobs.get_job(session, job_id)).model_dump(mode="json")


def _replay(run_id: str, after_seq: int) -> list[dict[str, Any]]:
    with Session(get_engine()) as session:
        events = queries.events_after(session, run_id, after_seq, REPLAY_PAGE)
        return [EventPublic.model_validate(e, from_attributes=True).model_dump() for e in events]


def _sse(event: str, data: Any, id_: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(
        json.dumps(data, separators=(",", ":")),
        event=event,
        id=str(id_) if id_ is not None else None,
    )


async def _drain(sub: Subscription) -> AsyncIterator[ServerSentEvent]:
    while True:
        msg = await sub.queue.get()
        if sub.dropped:
            # This client fell too far behind and lost messages: tell it to reload.
            sub.dropped = 0
            yield _sse("resync", {"reason": "stream fell behind; reload the data"})
        seq = msg.data.get("seq") if msg.event == "metric" else None
        yield _sse(msg.event, msg.data, seq)


@router.get("/runs/stream", response_class=EventSourceResponse, responses=SSE_RESPONSE)
async def stream_runs(
    ping: Annotated[float, Query(ge=1, le=300, description="Keep-alive period, seconds")] = 15,
) -> EventSourceResponse:
    async def events() -> AsyncIterator[ServerSentEvent]:
        async with bus.subscribe(RUNS_TOPIC) as sub:
            yield _sse("ready", {})
            async for item in _drain(sub):
                yield item

    return EventSourceResponse(events(), ping=ping)


@router.get(
    "/runs/{run_id}/stream",
    response_class=EventSourceResponse,
    responses={**SSE_RESPONSE, **NOT_FOUND},
)
async def stream_run(
    run_id: str,
    after_seq: Annotated[
        int | None,
        Query(ge=-1, le=INT32, description="Replay stored metrics after this seq"),
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    ping: Annotated[float, Query(ge=1, le=300, description="Keep-alive period, seconds")] = 15,
) -> EventSourceResponse:
    await asyncio.to_thread(_snapshot, run_id)  # 404 before the stream starts
    # An EventSource sends back the last id we gave it; anything else (non-ASCII digits such as
    # "²", which str.isdigit() accepts, or a number the database cannot hold) is ignored.
    if after_seq is None and last_event_id and _SEQ.match(last_event_id):
        after_seq = int(last_event_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with bus.subscribe(run_topic(run_id)) as sub:
            yield _sse("status", await asyncio.to_thread(_snapshot, run_id))
            last = after_seq
            if last is not None:
                while True:
                    page = await asyncio.to_thread(_replay, run_id, last)
                    for event in page:
                        yield _sse("metric", event, event["seq"])
                        last = max(last, event["seq"])
                    if len(page) < REPLAY_PAGE:
                        break
            async for item in _drain(sub):
                if item.event == "metric" and last is not None and item.id and int(item.id) <= last:
                    continue  # already sent by the replay
                yield item

    return EventSourceResponse(events(), ping=ping)


@router.get(
    "/jobs/{job_id}/stream",
    response_class=EventSourceResponse,
    responses={**SSE_RESPONSE, **NOT_FOUND},
)
async def stream_job(
    job_id: str,
    ping: Annotated[float, Query(ge=1, le=300, description="Keep-alive period, seconds")] = 15,
) -> EventSourceResponse:
    """``job`` events: the job as ``GET /jobs/{id}`` answers it, first now, then at each change."""
    await asyncio.to_thread(_job_snapshot, job_id)  # 404 before the stream starts

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with bus.subscribe(job_topic(job_id)) as sub:
            yield _sse("job", await asyncio.to_thread(_job_snapshot, job_id))
            async for item in _drain(sub):
                yield item

    return EventSourceResponse(events(), ping=ping)
