"""Automatic resume: an *interrupted* run becomes its next attempt, from its newest checkpoint.

Interrupted means the run did not prove it cannot work: its worker was lost or stopped, it
stalled, a rank crashed. Deterministic failures (bad input, OOM, divergence) never reach here:
their kinds are not in ``RETRYABLE_KINDS`` (``cpt_contract/outcomes.py``). Limits: ``training.max_restarts`` automatic restarts
per run, and none when the same failure happens twice at the same step (it would again).
"""

from __future__ import annotations

from typing import Any

from backend.models import Run
from backend.services import state_machine
from cpt_contract.limits import DEFAULT_MAX_RESTARTS, REASON_MAX
from cpt_contract.outcomes import (
    DEFAULT_FUTILE_ATTEMPTS,
    LAST_CHECKPOINT,
    RETRYABLE_KINDS,
    FailureKind,
    Try,
    why_not_retry,
)
from cpt_contract.statuses import RunStatus


def _record(
    run: Run, status: RunStatus, reason: str, kind: FailureKind | None, restarted: bool
) -> None:
    entry: dict[str, Any] = {
        "attempt": run.attempt,
        "status": status.value,
        "kind": kind.value if kind else None,
        "reason": reason[:REASON_MAX],
        "step": run.step,
        "restarted": restarted,
    }
    # A new list: the JSON column only notices a reassignment.
    run.attempt_log = [*(run.attempt_log or []), entry]


def restarts_left(run: Run) -> int:
    limit = int((run.config.get("training") or {}).get("max_restarts", DEFAULT_MAX_RESTARTS))
    used = sum(1 for e in run.attempt_log or [] if e.get("restarted"))
    return limit - used


def tries_of(run: Run) -> list[Try]:
    """The run's ended attempts as the retry policy sees them (step 0: nothing trained yet)."""
    return [
        Try(FailureKind(e["kind"]) if e.get("kind") else None, e.get("step") or None)
        for e in run.attempt_log or []
    ]


def why_not(run: Run, ended: Try, max_futile: int) -> str | None:
    """Why the run is *not* restarted after the attempt that just ``ended``, or None."""
    if restarts_left(run) <= 0:
        return "no automatic restart left (training.max_restarts)"
    return why_not_retry([*tries_of(run), ended], max_futile)


def end_attempt(
    run: Run,
    status: RunStatus,
    reason: str,
    *,
    kind: FailureKind | None,
    may_restart: bool = True,
    max_futile: int = DEFAULT_FUTILE_ATTEMPTS,
) -> bool:
    """End the current attempt with ``status`` and its failure ``kind``; restart it when the
    kind is an interruption and the rules allow. True if restarted.

    The caller commits; a restarted run is ``queued`` with ``enqueued_at`` None, so the
    recovery loop sends its message within a few seconds."""
    retryable = may_restart and kind in RETRYABLE_KINDS and status == RunStatus.failed
    ended = Try(kind, run.step or None)
    blocked = why_not(run, ended, max_futile) if retryable else "final"
    run.failure_kind = kind.value if kind else None
    _record(run, status, reason, kind, restarted=blocked is None)
    if blocked is not None:
        if retryable:
            reason = f"{reason} (not restarted: {blocked})"
        state_machine.transition(run, status, reason)
        return False
    state_machine.transition(run, RunStatus.failed, reason)
    attempt = run.attempt
    state_machine.resume(run, LAST_CHECKPOINT)
    run.status_reason = (
        f"restarting automatically as attempt {run.attempt} from the newest checkpoint "
        f"(attempt {attempt}: {reason})"
    )[:REASON_MAX]
    return True
