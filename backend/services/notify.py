"""What goes on the bus when a run or its data changes (the SSE streams' vocabulary)."""

from __future__ import annotations

from backend.models import EventPublic, LogChunk, Run, RunEvent
from backend.services.bus import RUNS_TOPIC, bus, run_topic
from backend.services.runs import to_public


def publish_run(run: Run) -> None:
    """``status`` on the run's stream and ``run`` on the all-runs stream."""
    data = to_public(run).model_dump(mode="json")
    bus.publish(run_topic(run.id), "status", data)
    bus.publish(RUNS_TOPIC, "run", data)


def publish_event(event: RunEvent) -> None:
    data = EventPublic.model_validate(event, from_attributes=True).model_dump(mode="json")
    bus.publish(run_topic(event.run_id), "metric", data)


def publish_log(chunk: LogChunk) -> None:
    data = {"attempt": chunk.attempt, "offset": chunk.offset, "text": chunk.text}
    bus.publish(run_topic(chunk.run_id), "log", data)
