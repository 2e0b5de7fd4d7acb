"""Which workers are alive and which have room: the one judgement the workers list, a queued
run's waiting reason, the resend rule, health's disks and the submit check share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from backend.models import Worker, utcnow
from cpt_contract.settings import Settings


def last_beat(worker: Worker) -> datetime:
    beat = worker.last_heartbeat
    return beat if beat.tzinfo else beat.replace(tzinfo=UTC)


def is_alive(worker: Worker, settings: Settings, now: datetime | None = None) -> bool:
    """A heartbeat within the lost window."""
    return (now or utcnow()) - last_beat(worker) <= timedelta(seconds=settings.worker_lost_seconds)


def has_room(worker: Worker) -> bool:
    return len(worker.current_runs or []) < max(1, worker.concurrency)


def live_workers(session: Session, settings: Settings, queue: str | None = None) -> list[Worker]:
    stmt = select(Worker).order_by(col(Worker.name))
    if queue is not None:
        stmt = stmt.where(Worker.queue == queue)
    now = utcnow()
    return [w for w in session.exec(stmt) if is_alive(w, settings, now)]
