"""How an attempt ended, typed: the end status, the failure kind, and the rules that follow from
the kind (may the panel restart it, does it count as the same failure again).

The worker decides the kind where it knows it (the training's end event, the process's exit, a
stall, Slurm's verdict) and reports it with the status; the API stores it per attempt and
auto-resume, recovery and the UI compare kinds. No code parses a reason's text for it: the
reason is for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EndStatus(StrEnum):
    """What an attempt ends as (the terminal run statuses)."""

    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class FailureKind(StrEnum):
    """Why an attempt failed (or was cancelled from outside the panel)."""

    #: The config or the data cannot work (the training script exits 2): a restart would too.
    bad_input = "bad_input"
    #: Out of accelerator memory.
    oom = "oom"
    #: A volume the training writes to (a checkpoint, the output) ran out of space.
    disk_full = "disk_full"
    #: The loss became NaN/inf (or diverged by the panel's rule).
    diverged = "diverged"
    #: An exception in the training (exit code != 0, no signal).
    error = "error"
    #: A rank died by a signal (SIGKILL from the OOM killer, a segfault, kill -9).
    crashed = "crashed"
    #: No training step for the stall window; the processes were stopped.
    stalled = "stalled"
    #: SIGTERM from outside (a container stop, scancel --signal=TERM): a checkpoint was saved.
    preempted = "preempted"
    #: The worker was stopped (SIGTERM to the worker) while the run trained.
    worker_stopped = "worker_stopped"
    #: The worker went silent (the API's recovery loop judged it lost).
    worker_lost = "worker_lost"
    #: The API could not record the run's reports (its database full or unreachable).
    unrecorded = "unrecorded"
    #: The worker refused to launch it (does not fit the box, a path escapes its roots).
    refused = "refused"
    #: Slurm: the job reached its time limit (resubmitted while requeues are left).
    slurm_time_limit = "slurm_time_limit"
    #: Slurm: the job was preempted or its node failed (resubmitted while requeues are left).
    slurm_preempted = "slurm_preempted"
    #: Slurm: a node of the job failed (NODE_FAIL): the run fails with the state; resume it.
    slurm_node_fail = "slurm_node_fail"
    #: Slurm: the job never started (sbatch refused, held, or an impossible request).
    slurm_never_started = "slurm_never_started"
    #: Slurm: the job left the queue without a result the worker could read.
    slurm_vanished = "slurm_vanished"
    #: Slurm: the job was cancelled outside the panel (scancel).
    slurm_cancelled = "slurm_cancelled"


#: Interruptions, not proofs that the run cannot work: the API may restart them from the newest
#: checkpoint (``training.max_restarts``), unless the same kind repeats at the same step.
RETRYABLE_KINDS = frozenset(
    {
        FailureKind.crashed,
        FailureKind.stalled,
        FailureKind.preempted,
        FailureKind.worker_stopped,
        FailureKind.worker_lost,
    }
)
#: Slurm's own interruptions: the Slurm executor resubmits them itself (``slurm_max_requeues``).
SLURM_REQUEUE_KINDS = frozenset({FailureKind.slurm_time_limit, FailureKind.slurm_preempted})

#: The checkpoint name that means "the newest one" (``pretrain.py --resume_from_checkpoint``).
LAST_CHECKPOINT = "last"


@dataclass(frozen=True)
class Outcome:
    """One attempt's end, as the worker reports it (``/api/internal/runs/{id}/status``)."""

    status: EndStatus
    reason: str | None = None
    kind: FailureKind | None = None

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    @classmethod
    def succeeded(cls, reason: str | None = None) -> Outcome:
        return cls(EndStatus.succeeded, reason)

    @classmethod
    def cancelled(
        cls, reason: str = "cancelled on request", kind: FailureKind | None = None
    ) -> Outcome:
        return cls(EndStatus.cancelled, reason, kind)

    @classmethod
    def failed(cls, kind: FailureKind, reason: str) -> Outcome:
        return cls(EndStatus.failed, reason, kind)


#: The training script's end-event statuses (``worker/events.py``) → the failure kind they mean.
END_EVENT_KINDS: dict[str, FailureKind] = {
    "diverged": FailureKind.diverged,
    "oom": FailureKind.oom,
    "disk_full": FailureKind.disk_full,
    "preempted": FailureKind.preempted,
}


# --- the retry policy, for every executor -------------------------------------------------------

#: Attempts (or Slurm jobs) in a row that end without training past the step where the one
#: before ended, after which the run is not tried again (``CPT_FUTILE_ATTEMPTS``).
DEFAULT_FUTILE_ATTEMPTS = 2


def made_progress(before: int | None, after: int | None) -> bool:
    """Whether a try trained past the step the try before it ended at (``before``; None:
    nothing was trained before it). ``after``: the last step it trained (None: none)."""
    return after is not None and (before is None or after > before)


@dataclass(frozen=True)
class Try:
    """One ended try of a run, as the retry policy sees it."""

    kind: FailureKind | None
    #: The last step it trained (a log or a checkpoint), None when it trained none.
    trained_step: int | None


def futile_streak(tries: list[Try]) -> int:
    """How many tries at the end of ``tries`` trained nothing past their predecessor."""
    streak = 0
    before: int | None = None
    for t in tries:
        if made_progress(before, t.trained_step):
            streak = 0
        else:
            streak += 1
        if t.trained_step is not None:
            before = t.trained_step if before is None else max(before, t.trained_step)
    return streak


def why_not_retry(tries: list[Try], max_futile: int = DEFAULT_FUTILE_ATTEMPTS) -> str | None:
    """Why the run must not be tried again after its last try (None: it may be).

    Two rules, the same for the API's automatic resume and the Slurm executor's resubmits:
    ``max_futile`` tries in a row without progress, or the same failure kind twice in a row at
    the same step (it would happen again)."""
    if not tries:
        return None
    last = tries[-1]
    if max_futile > 0 and futile_streak(tries) >= max_futile:
        reached = max((t.trained_step for t in tries if t.trained_step is not None), default=None)
        where = f"step {reached}" if reached is not None else "its first step"
        return f"{max_futile} tries in a row ended without training past {where}"
    if len(tries) >= 2 and last.kind is not None:
        prev = tries[-2]
        if prev.kind == last.kind and prev.trained_step == last.trained_step:
            at = last.trained_step if last.trained_step is not None else 0
            return f"the same failure ({last.kind.value}) happened twice at step {at}"
    return None
