"""What goes on the bus when a run or its data changes (the SSE streams' vocabulary)."""

from __future__ import annotations

from dataclasses import asdict

from backend.models import LogChunk, Run
from backend.services.bus import RUNS_TOPIC, bus, run_topic
from backend.services.ingest import NewEvent
from backend.services.runs import to_public


def publish_run(run: Run) -> None:
    """``status`` on the run's stream and ``run`` on the all-runs stream."""
    data = to_public(run).model_dump(mode="json")
    bus.publish(run_topic(run.id), "status", data)
    bus.publish(RUNS_TOPIC, "run", data)


def publish_event(event: NewEvent) -> None:
    """The event as ``GET /runs/{id}/events`` shows it."""
    data = asdict(event)
    del data["run_id"]
    bus.publish(run_topic(event.run_id), "metric", data)


def publish_log(chunk: LogChunk) -> None:
    data = {"attempt": chunk.attempt, "offset": chunk.offset, "text": chunk.text}
    bus.publish(run_topic(chunk.run_id), "log", data)
