"""Automatic resume: an *interrupted* run becomes its next attempt, from its newest checkpoint.

Interrupted means the run did not prove it cannot work: its worker was lost or stopped, it
stalled, a rank crashed. Deterministic failures (bad input, OOM, divergence) never reach here:
the worker does not mark them retryable. Limits: ``training.max_restarts`` automatic restarts
per run, and none when the same failure happens twice at the same step (it would again).
"""

from __future__ import annotations

import re
from typing import Any

from backend.models import Run
from backend.services import state_machine
from cpt_contract.statuses import RunStatus


def failure_kind(reason: str) -> str:
    """``worker lost: no word …`` → ``worker lost``; digits dropped so pids/seconds don't count."""
    head = reason.split(":", 1)[0] if ":" in reason else reason[:60]
    return re.sub(r"\d+", "#", head).strip().lower()


def _record(run: Run, status: RunStatus, reason: str, restarted: bool) -> None:
    entry: dict[str, Any] = {
        "attempt": run.attempt,
        "status": status.value,
        "reason": reason[:2000],
        "step": run.step,
        "restarted": restarted,
    }
    # A new list: the JSON column only notices a reassignment.
    run.attempt_log = [*(run.attempt_log or []), entry]


def restarts_left(run: Run) -> int:
    limit = int((run.config.get("training") or {}).get("max_restarts", 3))
    used = sum(1 for e in run.attempt_log or [] if e.get("restarted"))
    return limit - used


def why_not(run: Run, reason: str) -> str | None:
    """Why the run is *not* restarted, or None when it is."""
    if restarts_left(run) <= 0:
        return "no automatic restart left (training.max_restarts)"
    kind = failure_kind(reason)
    for entry in run.attempt_log or []:
        if entry.get("step") == run.step and failure_kind(str(entry.get("reason", ""))) == kind:
            return f"the same failure happened twice at step {run.step}"
    return None


def end_attempt(run: Run, status: RunStatus, reason: str, *, retryable: bool) -> bool:
    """End the current attempt with ``status``; restart it when allowed. True if restarted.

    The caller commits; a restarted run is ``queued`` with ``enqueued_at`` None, so the
    recovery loop sends its message within a few seconds."""
    blocked = why_not(run, reason) if retryable and status == RunStatus.failed else "final"
    _record(run, status, reason, restarted=blocked is None)
    if blocked is not None:
        if retryable and status == RunStatus.failed:
            reason = f"{reason} (not restarted: {blocked})"
        state_machine.transition(run, status, reason)
        return False
    state_machine.transition(run, RunStatus.failed, reason)
    attempt = run.attempt
    state_machine.resume(run, "last")
    run.status_reason = (
        f"restarting automatically as attempt {run.attempt} from the newest checkpoint "
        f"(attempt {attempt}: {reason})"
    )[:2000]
    return True
