"""The run statuses, defined once for the API, the worker, the CLI and (generated) the frontend.

``frontend/src/api/contract.ts`` is generated from this module by ``python -m cpt_contract.codegen``;
a test fails when the two disagree.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    queued = "queued"
    starting = "starting"
    running = "running"
    cancelling = "cancelling"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


#: Not finished: a cancel is still possible (and the UI shows the run as live).
ACTIVE_STATUSES = frozenset(
    {RunStatus.queued, RunStatus.starting, RunStatus.running, RunStatus.cancelling}
)
#: Statuses in which a worker process exists (the recovery loop watches these).
WORKER_STATUSES = frozenset({RunStatus.starting, RunStatus.running, RunStatus.cancelling})
TERMINAL_STATUSES = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled})
#: Resume rules, one place for the API and both of the run page's buttons: a finished run may
#: resume from any of its checkpoints; from its newest ("last") only when it did not finish its
#: training (a succeeded run's newest checkpoint is its end: clone it to train further).
RESUMABLE_STATUSES = TERMINAL_STATUSES
RESUME_LAST_STATUSES = frozenset({RunStatus.failed, RunStatus.cancelled})
#: What a worker may report through ``/api/internal/runs/{id}/status``. ``starting`` only
#: updates the reason of a run that is starting (e.g. a Slurm job pending: "Resources").
REPORTABLE_STATUSES = (
    RunStatus.starting,
    RunStatus.running,
    RunStatus.succeeded,
    RunStatus.failed,
    RunStatus.cancelled,
)
#: Order along one attempt, so a client never moves a status backwards (terminal ones tie).
STATUS_RANK: dict[RunStatus, int] = {
    RunStatus.queued: 0,
    RunStatus.starting: 1,
    RunStatus.running: 2,
    RunStatus.cancelling: 3,
    RunStatus.succeeded: 4,
    RunStatus.failed: 4,
    RunStatus.cancelled: 4,
}
