"""Crash recovery at the application level (never the broker's visibility timeout).

Every few seconds: a run held by a worker that has gone silent for ``worker_lost_seconds`` is
marked failed ("worker lost"), and runs still waiting for their Celery message get it (again).
The worker's claim makes a repeated message harmless.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import datetime, timedelta

from sqlmodel import col, select

from backend.core import dbhealth
from backend.core.db import write_session
from backend.models import Run, Worker, utcnow
from backend.services import autoresume, enqueue, jobs
from backend.services.notify import publish_run
from cpt_contract.outcomes import FailureKind
from cpt_contract.settings import Settings
from cpt_contract.statuses import WORKER_STATUSES, RunStatus

log = logging.getLogger(__name__)


class _Hearing:
    """When the API itself last stopped listening (its event loop starved or blocked).

    Reports that arrived while the API could not run sit unread in its sockets; the silence
    they break is the API's, not the worker's. After such a stall no worker is judged lost
    until a full ``worker_lost_seconds`` window has passed with the API listening.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stall_ended: float | None = None

    def stalled(self, at: float | None = None) -> None:
        with self._lock:
            self._stall_ended = time.monotonic() if at is None else at

    def deaf_within(self, seconds: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            return self._stall_ended is not None and now - self._stall_ended < seconds

    def reset(self) -> None:
        with self._lock:
            self._stall_ended = None


hearing = _Hearing()


def stall_threshold(settings: Settings) -> float:
    """A late wake-up longer than this is a stall of the API (a quarter of the lost window)."""
    return max(0.5, settings.worker_lost_seconds / 4)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=utcnow().tzinfo)
    return value


def fail_lost_runs(settings: Settings, now: datetime | None = None) -> list[str]:
    """Runs whose worker (and the run itself) has been silent too long → failed."""
    now = now or utcnow()
    limit = timedelta(seconds=settings.worker_lost_seconds)
    if dbhealth.failed_within(settings.worker_lost_seconds):
        # The workers spoke, but a failing database could not record it (disk full): their
        # silence in it proves nothing until they have had a full window to be heard again.
        return []
    if hearing.deaf_within(settings.worker_lost_seconds):
        return []  # the API was not listening: the silence may be its own
    failed: list[Run] = []
    with write_session(settings) as session:
        runs = session.exec(
            select(Run).where(col(Run.status).in_([s.value for s in WORKER_STATUSES]))
        ).all()
        for run in runs:
            # Signs of life: the run's own traffic, and heartbeats that list it as running.
            beats = [_aware(run.last_seen_at), _aware(run.started_at)]
            worker = session.get(Worker, run.worker) if run.worker else None
            worker_beat = _aware(worker.last_heartbeat) if worker else None
            # Only the live instance that claimed the run vouches for it: a worker restarted
            # under the same name is another instance and never keeps a dead one's run alive.
            same_instance = run.worker_instance is None or (
                worker is not None and worker.instance == run.worker_instance
            )
            if worker is not None and same_instance and run.id in (worker.current_runs or []):
                beats.append(worker_beat)
            last = max((b for b in beats if b is not None), default=None)
            if last is not None and now - last <= limit:
                continue
            silent = (now - last).total_seconds() if last else float("inf")
            if worker_beat is not None and now - worker_beat <= limit:
                # The box is up but no longer runs it (its worker restarted, the task died).
                reason = (
                    f"worker lost: {run.worker} is alive but has not run this attempt for "
                    f"{silent:.0f} s (worker restarted?); resume from the last checkpoint"
                )
            else:
                reason = (
                    f"worker lost: no word from {run.worker or 'the worker'} for {silent:.0f} s "
                    "(it crashed or lost the network); resume from the last checkpoint"
                )
            # A lost worker interrupted the run; a run being cancelled just ends.
            autoresume.end_attempt(
                run,
                RunStatus.failed,
                reason,
                kind=FailureKind.worker_lost,
                may_restart=run.status != RunStatus.cancelling,
                max_futile=settings.futile_attempts,
            )
            failed.append(run)
        session.commit()
    for run in failed:
        publish_run(run)
    return [r.id for r in failed]


def recover_jobs(settings: Settings) -> list[str]:
    """Jobs whose worker went silent fail; queued jobs whose message may be lost are resent."""
    if hearing.deaf_within(settings.worker_lost_seconds):
        return []  # as for runs: the API's own silence is no worker's
    with write_session(settings) as session:
        changed = jobs.recover(settings, session, settings.worker_lost_seconds)
        session.commit()
    return changed


async def recovery_loop(settings: Settings, interval: float) -> None:
    await asyncio.to_thread(enqueue.send_pending, settings, all_queued=True)
    while True:
        asleep = time.monotonic()
        await asyncio.sleep(interval)
        late = time.monotonic() - asleep - interval
        if late > stall_threshold(settings):
            log.warning("the API did not run for %.1f s: no worker is judged lost meanwhile", late)
            hearing.stalled()
        try:
            await asyncio.to_thread(fail_lost_runs, settings)
            await asyncio.to_thread(enqueue.send_pending, settings)
            await asyncio.to_thread(recover_jobs, settings)
        except Exception:  # keep the loop alive through a database hiccup
            log.exception("recovery loop iteration failed")


def loop_interval(settings: Settings) -> float:
    return max(0.5, min(5.0, settings.worker_lost_seconds / 4))
