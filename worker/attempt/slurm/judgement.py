"""What a finished Slurm job means for the run: a pure function of what Slurm and the training
reported (``judge``), so every state is a row of a table test (``tests/slurm/test_judgement.py``).

The training's own end event wins when it succeeded; a job ended by its time limit or by
preemption (Slurm sent TERM first: the training saved a checkpoint) is resubmitted to resume
from the last checkpoint, while rounds are left; the other final states say what happened in
words and with their failure kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cpt_contract.outcomes import FailureKind, Outcome
from worker.attempt.outcome import outcome_of
from worker.attempt.slurm import states
from worker.attempt.slurm.states import JobInfo


@dataclass(frozen=True)
class JobEnd:
    """Everything known about one finished job of the attempt."""

    job_id: str
    #: Slurm's last report of the job; None when it never answered before forgetting it.
    info: JobInfo | None
    #: The training's own ``end`` event from this job (None: it wrote none).
    end_event: dict[str, Any] | None = None
    #: The batch shell saw Slurm's TERM (its marker file; the job may then end FAILED).
    signalled: bool = False
    #: The job pended for a reason that never clears (``states.NEVER_STARTS``), in words.
    never_starts: str | None = None
    cancelled: bool = False  # the panel's cancel
    stopping: bool = False  # this worker is stopping
    #: The attempt log's last error line (used when the training left no end event).
    error_line: str | None = None
    #: The newest complete checkpoint's name, for the advice of a run that stops here.
    checkpoint: str | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    #: Submit the next job, resuming from the last checkpoint, within the same attempt.
    resubmit: bool = False
    #: A line for the attempt log.
    note: str | None = None


def resume_hint(checkpoint: str | None) -> str:
    """Where a resume would start, named only when there is a checkpoint to start from."""
    if checkpoint is None:
        return "; no checkpoint was saved to resume from"
    return f"; resume from {checkpoint}"


def judge(job: JobEnd, n: int, max_requeues: int, signal_grace_seconds: float) -> Decision:
    """The run's outcome after job ``n`` (0-based) of the attempt, and whether to resubmit."""
    info, end = job.info, job.end_event
    state = info.state if info else "UNKNOWN"
    name = f"Slurm job {job.job_id}"
    if job.never_starts:
        return Decision(
            Outcome.failed(FailureKind.slurm_never_started, f"{name}: {job.never_starts}")
        )
    if job.stopping and not job.cancelled:
        # Interrupted, not broken: the API restarts it from its newest checkpoint.
        reason = "the worker stopped during the run; resume it from a checkpoint"
        return Decision(Outcome.failed(FailureKind.worker_stopped, reason))
    if job.cancelled:
        return Decision(Outcome.cancelled())
    if end is not None and end.get("status") == "succeeded":
        return Decision(outcome_of(end, 0, False))
    # The job often ends itself after TERM (a checkpoint saved, exit 75): FAILED, not
    # TIMEOUT/PREEMPTED. The batch shell's marker and PreemptTime tell what happened.
    preempted = info is not None and info.preempted
    interrupted = state in states.INTERRUPTED_STATES or (
        (job.signalled or preempted) and state in ("COMPLETED", "FAILED", "UNKNOWN")
    )
    if interrupted:
        kind = FailureKind.slurm_time_limit
        if info and state in states.INTERRUPTED_STATES:
            why = states.final_reason(info) or state
            kind = states.final_kind(state)
        elif preempted:
            why = f"{name} was preempted"
            kind = FailureKind.slurm_preempted
        elif info and info.near_limit(signal_grace_seconds):
            why = f"{name} reached its time limit"
        else:
            why = f"{name} was signalled (time limit or preemption)"
        if n < max_requeues:
            note = f"{why}: resubmitting to resume from the last checkpoint"
            return Decision(Outcome.failed(kind, why), resubmit=True, note=note)
        advice = f"{resume_hint(job.checkpoint)}; or a longer launch.time_limit"
        return Decision(Outcome.failed(kind, f"{why} ({n + 1} jobs){advice}"))
    if state == "CANCELLED":
        outside = f"{name} was cancelled outside the panel (scancel)"
        return Decision(Outcome.cancelled(outside, FailureKind.slurm_cancelled))
    final = states.final_reason(info) if info else None
    if info and final:
        return Decision(Outcome.failed(states.final_kind(info.state), final))
    if info is None and end is None:
        return Decision(
            Outcome.failed(FailureKind.slurm_vanished, f"{name} vanished without a result")
        )
    code = info.exit_code if info and info.exit_code is not None else 1
    return Decision(outcome_of(end, code, False, job.error_line))
