"""Queue notifications in the transaction that ends a run.

An ORM hook rather than a call in each path: a run ends in ingest (the worker's report), in the
recovery loop (a lost worker), on a cancel, on a failed download, through the automatic restart;
every one of them sets ``Run.status``. The ``set`` listener notes the run in its session, and
``before_flush`` adds one ``NotificationDelivery`` per matching channel: inserted with the status
change or not at all, never delivered here (``drain.py`` does that, off the request).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from backend.models import Experiment, NotificationChannel, NotificationDelivery, Run, utcnow
from backend.services.notifications import payloads
from cpt_contract.outcomes import FailureKind
from cpt_contract.settings import Settings, get_settings
from cpt_contract.statuses import ACTIVE_STATUSES, RunStatus

log = logging.getLogger(__name__)

_KEY = "cpt_notify_runs"
_ENDS = {RunStatus.succeeded.value, RunStatus.failed.value, RunStatus.cancelled.value}


def event_of(run: Run, reached: set[tuple[str, str | None]]) -> str | None:
    """The event a run's status changes in this flush amount to (None: nothing to tell).
    ``reached``: each status set, with the failure kind the run had then."""
    stalled = FailureKind.stalled.value
    if run.status in _ENDS:
        kinds = {run.failure_kind} | {k for s, k in reached if s == run.status}
        return "stalled" if run.status == RunStatus.failed and stalled in kinds else run.status
    # Failed and restarted automatically in the same transaction: only a stall is news.
    if (RunStatus.failed.value, stalled) in reached:
        return "stalled"
    return None


def channels_for(
    session: Session, event_name: str, run_id: str | None, owner: str | None
) -> list[NotificationChannel]:
    """A run's own channels, and its owner's channels that name no run (a run or experiment
    from before there were users, owner None, is every such channel's)."""
    rows = session.exec(select(NotificationChannel))
    return [
        c
        for c in rows
        if event_name in c.events
        and (
            (run_id is not None and c.run_id == run_id)
            or (c.run_id is None and (owner is None or c.owner is None or c.owner == owner))
        )
    ]


def queue(
    session: Session,
    event_name: str,
    summary: dict[str, Any],
    run_id: str | None,
    owner: str | None,
) -> int:
    """Add one delivery per channel that wants ``event_name`` (the caller's transaction)."""
    now = utcnow()
    channels = channels_for(session, event_name, run_id, owner)
    for channel in channels:
        session.add(
            NotificationDelivery(
                channel_id=channel.id,
                event=event_name,
                run_id=run_id,
                payload=summary,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(channels)


def _experiment_at_rest(session: Session, settings: Settings, run: Run) -> None:
    """The run that ended was its experiment's last one going: tell the user's channels."""
    from backend.services.experiments import lifecycle

    exp = session.get(Experiment, run.experiment_id)
    if exp is None:
        return
    members = lifecycle.runs_of(session, exp.id)
    if any(m.status in ACTIVE_STATUSES for m in members):
        return
    summary = payloads.experiment_summary(
        settings, exp, lifecycle.status(exp, members), lifecycle.counts(members)
    )
    queue(session, "experiment_finished", summary, None, exp.owner)


@event.listens_for(Run.status, "set")
def _status_set(run: Run, value: Any, old: Any, _initiator: Any) -> None:
    if value == old or value not in (*_ENDS, RunStatus.queued.value):
        return
    session = object_session(run)
    if session is None:
        return
    noted: dict[str, tuple[Run, set[tuple[str, str | None]]]] = session.info.setdefault(_KEY, {})
    noted.setdefault(run.id, (run, set()))[1].add((str(value), run.failure_kind))


@event.listens_for(OrmSession, "before_flush")
def _before_flush(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    noted = session.info.pop(_KEY, None)
    if not noted:
        return
    settings: Settings = session.info.get("settings") or get_settings()
    experiments: dict[str, Run] = {}
    with session.no_autoflush:
        for run, reached in noted.values():
            name = event_of(run, reached)
            if name is None:
                continue
            try:
                summary = payloads.run_summary(settings, run, name)
            except Exception:  # a summary must never cost the status change itself
                log.exception("notification summary of run %s failed", run.id)
                summary = {"event": name, "text": f"Run {run.id} {name}", "run": {"id": run.id}}
            queue(session, name, summary, run.id, run.owner)  # type: ignore[arg-type]
            if run.experiment_id and run.status in _ENDS:
                experiments.setdefault(run.experiment_id, run)
        for run in experiments.values():  # once per experiment, however many runs ended
            _experiment_at_rest(session, settings, run)  # type: ignore[arg-type]
