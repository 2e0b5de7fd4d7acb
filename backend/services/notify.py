"""What goes on the bus when a run or its data changes (the SSE streams' vocabulary)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from backend.models import LogChunk, Run
from backend.services.bus import RUNS_TOPIC, bus, run_topic
from backend.services.ingest import NewEvent
from backend.services.runs import to_public


def publish_run(run: Run) -> None:
    """``status`` on the run's stream and ``run`` on the all-runs stream."""
    topic = run_topic(run.id)
    if not (bus.has_subscribers(topic) or bus.has_subscribers(RUNS_TOPIC)):
        return  # nobody is watching: skip serialising the run on every ingest batch
    data = to_public(run).model_dump(mode="json")
    bus.publish(topic, "status", data)
    bus.publish(RUNS_TOPIC, "run", data)


def publish_events(events: Sequence[NewEvent]) -> None:
    """Each event as ``GET /runs/{id}/events`` shows it, in order (one run's batch)."""
    if not events:
        return
    topic = run_topic(events[0].run_id)
    if not bus.has_subscribers(topic):
        return  # nobody is watching this run: skip building the messages (ingest's hot path)
    for event in events:
        data = {
            "attempt": event.attempt,
            "seq": event.seq,
            "kind": event.kind,
            "step": event.step,
            "time": event.time,
            "data": event.data,
        }
        bus.publish(topic, "metric", data)


class LogMessage(BaseModel):
    """A run stream's ``log`` message: new bytes of an attempt's log at their byte offset."""

    attempt: int
    offset: int
    text: str


def publish_log(chunk: LogChunk) -> None:
    data = LogMessage(attempt=chunk.attempt, offset=chunk.offset, text=chunk.text)
    bus.publish(run_topic(chunk.run_id), "log", data.model_dump())
