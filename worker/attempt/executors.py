"""Where an attempt's training executes: one protocol, two executors.

``RunAttempt`` (``worker.attempt.runner``) claims the attempt, ships its files and reports its
outcome; its executor launches the training and watches it until it ends:

- ``worker.attempt.local.LocalExecutor``: torchrun on this box, in its own session, its whole
  process tree tracked, stalls and a silent API judged while it runs;
- ``worker.attempt.slurm.executor.SlurmExecutor``: a batch job submitted with ``sbatch`` from a
  login node, watched with ``scontrol``, resubmitted after a time limit or preemption.

``CPT_EXECUTOR=local|slurm`` picks the executor per worker (``executor_for``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cpt_contract.outcomes import Outcome
    from cpt_contract.protocol import CancelAnswer, ClaimOut
    from cpt_contract.settings import Settings
    from worker.attempt.context import AttemptContext
    from worker.attempt.shipper import RunShipper


@runtime_checkable
class Executor(Protocol):
    def run(self, ctx: AttemptContext, claim: ClaimOut, shipper: RunShipper) -> Outcome:
        """Prepare, launch and watch the training until it ended (or was stopped); its outcome.
        ``Refused`` (``worker.attempt.context``): it could not start here, with the reason."""
        ...

    def keepalive(self, ctx: AttemptContext) -> CancelAnswer:
        """Repeat the current status to the API while the run is quiet (the answer carries a
        cancel request)."""
        ...

    def abort(self, ctx: AttemptContext) -> None:
        """A worker error: stop whatever was started."""
        ...

    def release(self, ctx: AttemptContext) -> None:
        """The attempt is over: nothing of it may be left running, its leases are freed."""
        ...


def executor_for(settings: Settings) -> Executor:
    """The executor of this worker (imported lazily: a local worker needs no Slurm)."""
    if settings.executor == "slurm":
        from worker.attempt.slurm.executor import SlurmExecutor

        return SlurmExecutor()
    from worker.attempt.local import LocalExecutor

    return LocalExecutor()
