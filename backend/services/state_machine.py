"""The only place a run's status changes.

queued → starting → running → succeeded | failed | cancelled, with cancelling in between when a
cancel is requested while a worker holds the run. A finished run can be resumed: it goes back to
queued with ``attempt + 1``. A queued run that never started can fail: its model's download
failed (``hub_models.after_download``). Anything else raises ``IllegalTransition`` (the API
answers 409).
"""

from __future__ import annotations

from datetime import datetime

from backend.models import Run, utcnow
from backend.services.errors import Conflict
from cpt_contract.limits import REASON_MAX
from cpt_contract.statuses import TERMINAL_STATUSES, RunStatus

S = RunStatus

ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    S.queued: frozenset({S.starting, S.cancelled, S.failed}),
    S.starting: frozenset({S.running, S.failed, S.cancelling, S.cancelled}),
    S.running: frozenset({S.succeeded, S.failed, S.cancelling, S.cancelled}),
    S.cancelling: frozenset({S.cancelled, S.failed, S.succeeded}),
    S.succeeded: frozenset({S.queued}),
    S.failed: frozenset({S.queued}),
    S.cancelled: frozenset({S.queued}),
}

#: The verb people see in a 409 for a target status ("cannot cancel a run that is succeeded").
_VERBS: dict[RunStatus, str] = {
    S.queued: "resume",
    S.starting: "start",
    S.running: "mark running",
    S.cancelling: "cancel",
    S.cancelled: "cancel",
    S.succeeded: "finish",
    S.failed: "fail",
}


class IllegalTransition(Conflict):
    """A status change the state machine does not allow."""

    def __init__(self, current: str, target: str, verb: str | None = None) -> None:
        self.current, self.target = current, target
        action = verb or _VERBS.get(RunStatus(target), f"move to {target}")
        super().__init__(f"cannot {action} a run that is {current}")


def can_transition(current: str, target: str) -> bool:
    return RunStatus(target) in ALLOWED[RunStatus(current)]


def transition(
    run: Run,
    target: RunStatus,
    reason: str | None = None,
    *,
    verb: str | None = None,
    now: datetime | None = None,
) -> Run:
    """Move ``run`` to ``target`` (the caller commits). Keeps the timestamps consistent."""
    if not can_transition(run.status, target):
        raise IllegalTransition(run.status, target, verb)
    now = now or utcnow()
    run.status = target
    run.updated_at = now
    if reason is not None:
        run.status_reason = reason[:REASON_MAX]
    if target == S.starting:
        run.started_at = now
        run.first_started_at = run.first_started_at or now
        run.finished_at = None
        run.phase, run.phase_since = None, None
    elif target in TERMINAL_STATUSES:
        run.finished_at = now
        run.eta_seconds = None
        run.phase, run.phase_since = None, None
        if run.started_at is not None:
            # This attempt's time joins the earlier attempts' (Duration sums them all).
            run.attempts_seconds = (run.attempts_seconds or 0.0) + seconds_between(
                run.started_at, now
            )
    return run


def seconds_between(start: datetime, end: datetime) -> float:
    """``end - start`` in seconds, ≥ 0 (SQLite hands timestamps back without a zone)."""
    if start.tzinfo is None and end.tzinfo is not None:
        start = start.replace(tzinfo=end.tzinfo)
    return max(0.0, (end - start).total_seconds())


def resume(
    run: Run, checkpoint: str, *, now: datetime | None = None, step: int | None = None
) -> Run:
    """Finished run → queued again, next attempt, resuming from ``checkpoint``."""
    transition(run, S.queued, "", verb="resume", now=now)
    run.status_reason = None
    run.attempt += 1
    run.resume_from = checkpoint
    run.worker = None
    run.pid = None
    run.started_at = None
    run.finished_at = None
    run.enqueued_at = None
    run.end_status = None
    run.end_reason = None
    run.failure_kind = None
    run.stop_reason = None
    run.eta_seconds = None
    # Progress restarts where the checkpoint is, at once, not where the last attempt stopped
    # (the new attempt's start event confirms it); the speed is unknown until it is measured.
    if step is not None:
        run.step = step
        run.tokens_seen = step * run.tokens_per_step if run.tokens_per_step else None
    run.tokens_per_second = None
    return run
