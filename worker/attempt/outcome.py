"""An attempt's end, in the contract's terms (``cpt_contract.outcomes.Outcome``): from the
training's own ``end`` event, else from its exit, with the first failing rank named.

Pure functions of what the training left (its end event, exit code, log and failure notes):
the local and the Slurm executor judge a finished training the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cpt_contract.outcomes import END_EVENT_KINDS, EndStatus, FailureKind, Outcome
from worker.attempt import rootcause
from worker.attempt.files import last_error_line
from worker.exit_codes import EXIT_BAD_INPUT


def outcome_from(
    end_event: dict[str, Any] | None, returncode: int, cancelled: bool, log_path: Path
) -> Outcome:
    """The attempt's end from the training's own end event, else from its exit (and the log's
    last error line)."""
    unexplained = not cancelled and end_event is None and returncode not in (0, -9, 137)
    error = last_error_line(log_path) if unexplained else None
    return outcome_of(end_event, returncode, cancelled, error)


def outcome_of(
    end_event: dict[str, Any] | None,
    returncode: int,
    cancelled: bool,
    error_line: str | None = None,
) -> Outcome:
    """``outcome_from`` on what was read already (pure): ``error_line`` is the log's last
    error line, used when the training left no end event and failed."""
    if cancelled:
        return Outcome.cancelled()
    if end_event is not None:
        status = str(end_event.get("status", "failed"))
        reason = end_event.get("reason") or None
        if status == "succeeded":
            return Outcome.succeeded(reason)
        if status == "cancelled":
            return Outcome.cancelled(reason or "cancelled")
        kind = END_EVENT_KINDS.get(status)
        if kind is None:  # "failed": the exit code says whether the input was at fault
            kind = FailureKind.bad_input if returncode == EXIT_BAD_INPUT else FailureKind.error
        if reason and status not in ("failed", "preempted") and status not in reason.lower():
            reason = f"{status}: {reason}"  # the words people read keep the kind too
        if status == "preempted":  # SIGTERM from outside (scancel, a container stop)
            reason = f"preempted: {reason}"
        return Outcome.failed(kind, reason or status)
    if returncode == 0:
        return Outcome.succeeded()
    if returncode in (-9, 137):
        return Outcome.failed(
            FailureKind.crashed, "killed (SIGKILL: out of host memory, or stopped from outside)"
        )
    kind = FailureKind.bad_input if returncode == EXIT_BAD_INPUT else FailureKind.error
    tail = f": {error_line}" if error_line else ""
    return Outcome.failed(kind, f"exit code {returncode}{tail}")


#: A rank killed by one of these was interrupted (OOM killer, a crash, kill -9): worth a restart.
_CRASH_SIGNALS = ("SIGKILL", "SIGSEGV", "SIGBUS", "SIGABRT", "SIGTERM", "SIGHUP")


def explain(
    outcome: Outcome,
    returncode: int,
    cancelled: bool,
    log_path: Path,
    output_dir: Path,
    since: float,
) -> Outcome:
    """Name the first failing rank (torchrun's root cause), not the secondary error rank 0 saw."""
    if cancelled or returncode == 0 or outcome.status == EndStatus.succeeded:
        return outcome
    if outcome.kind in (
        FailureKind.diverged,
        FailureKind.oom,
        FailureKind.disk_full,
        FailureKind.preempted,
    ):
        return outcome  # rank 0 knew exactly why
    root = rootcause.from_log(log_path)
    if root is None or (root.rank == 0 and root.signal is None and outcome.status == "failed"):
        return outcome
    reason = root.describe(rootcause.rank_note(output_dir, root.rank, since))
    if root.signal in _CRASH_SIGNALS:
        return Outcome.failed(FailureKind.crashed, reason)
    return Outcome.failed(outcome.kind or FailureKind.error, reason)
