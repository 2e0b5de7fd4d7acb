"""Ring the broker's doorbell: send ``worker.tasks.run_training(run_id, attempt)``.

The message carries no config: the worker claims the run through the API, so a duplicate or
stale message is harmless (the claim answers 409).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from celery import Celery
from sqlmodel import Session, col, select

from backend.core.db import get_engine, write_session
from backend.models import Run, utcnow
from backend.services import hub_models, workers
from cpt_contract.broker import RUN_TRAINING_TASK, celery_config, jobs_queue
from cpt_contract.jobs import RUN_JOB_TASK
from cpt_contract.settings import Settings
from cpt_contract.statuses import RunStatus

log = logging.getLogger(__name__)

_apps: dict[str, Celery] = {}
_lock = threading.Lock()

#: Give up quickly when the broker is down; the recovery loop sends again later.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def celery_app(settings: Settings) -> Celery:
    key = f"{settings.celery_broker_url}|{settings.resolved_data_dir}"
    with _lock:
        app = _apps.get(key)
        if app is None:
            app = Celery("cpt-panel-api", set_as_current=False)
            app.conf.update(celery_config(settings))
            _apps[key] = app
        return app


def send_run(settings: Settings, run_id: str, attempt: int, queue: str) -> None:
    """Raises on a broker error (the caller leaves the run queued for a later resend)."""
    celery_app(settings).send_task(
        RUN_TRAINING_TASK,
        args=(run_id, attempt),
        queue=queue,
        retry=True,
        retry_policy=_RETRY_POLICY,
    )


def send_job(settings: Settings, job_id: str, queue: str) -> None:
    """Jobs go to the queue's reserved job slot (``<queue>.jobs``), never behind training."""
    celery_app(settings).send_task(
        RUN_JOB_TASK,
        args=(job_id,),
        queue=jobs_queue(queue),
        retry=True,
        retry_policy=_RETRY_POLICY,
    )


def send_pending(settings: Settings, *, all_queued: bool = False) -> list[str]:
    """Send the Celery message of queued runs that have none yet, or whose message was sent
    ``resend_seconds`` ago and never claimed although a live worker of the queue had room (a
    flushed or lost broker; the claim dedups repeats); all queued at startup."""
    with Session(get_engine(settings)) as session:
        stmt = select(Run).where(Run.status == RunStatus.queued)
        if not all_queued:
            # Leave a just-created run to the request that created it (it sends at once).
            settled = utcnow() - timedelta(seconds=3)
            stale = utcnow() - timedelta(seconds=settings.resend_seconds)
            stmt = stmt.where(
                (col(Run.enqueued_at).is_(None) & (col(Run.updated_at) < settled))
                | (col(Run.enqueued_at) < stale)
            )
        room: dict[str, bool] = {}

        def worth_resending(run: Run) -> bool:
            # One outstanding message per queued run: a sent one is sent again only when a
            # live worker of its queue has room and still has not claimed it (so it was lost);
            # while the queue's workers are busy or gone, it waits in the broker as it is.
            if run.enqueued_at is None or all_queued:
                return True
            if run.queue not in room:
                room[run.queue] = any(
                    workers.has_room(w) for w in workers.live_workers(session, settings, run.queue)
                )
            return room[run.queue]

        pending = [
            (r.id, r.attempt, r.queue)
            for r in session.exec(stmt.order_by(col(Run.created_at)))
            # A run whose model is still downloading is sent when the download ends.
            if hub_models.waiting_for(settings, session, r) is None and worth_resending(r)
        ]
    sent: list[str] = []
    for run_id, attempt, queue in pending:
        if enqueue_run(settings, run_id, attempt, queue):
            sent.append(run_id)
    return sent


def enqueue_run(settings: Settings, run_id: str, attempt: int, queue: str) -> bool:
    """Send the message and remember it was sent; False (and a log line) if the broker is down."""
    try:
        send_run(settings, run_id, attempt, queue)
    except Exception as exc:  # broker down: stay unmarked, the loop tries again
        log.warning("could not enqueue run %s: %s", run_id, exc)
        return False
    with write_session(settings) as session:
        run = session.get(Run, run_id)
        if run is not None and run.attempt == attempt:
            run.enqueued_at = utcnow()
            session.commit()
    return True
