"""Where a run's training executes: one interface, two implementations.

An ``Execution`` is a started training job: ``poll`` (its state), ``cancel``, ``exit_status``
and ``log_path`` (where its output lands, shipped by the worker like any run's log).

- ``LocalProcess``: torchrun started on this box in its own session (``worker.attempt.launcher``, the
  code ``worker.attempt.runner.RunAttempt`` uses; nothing of it is duplicated here).
- ``worker.attempt.slurm.attempt.SlurmJob``: a batch job submitted with ``sbatch`` from a login node.

``CPT_EXECUTOR=local|slurm`` picks the attempt class per worker (``attempt_class``); both share
the claim, the shipper and the status reports of ``RunAttempt``.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from worker.attempt import launcher
from worker.attempt.proctree import ProcessTree

if TYPE_CHECKING:
    from cpt_contract.settings import Settings
    from worker.attempt.runner import RunAttempt


@dataclass(frozen=True)
class ExecState:
    """``pending`` (waiting for resources), ``running`` or ``done``; ``detail`` in words."""

    phase: str
    detail: str = ""


class Execution(Protocol):
    log_path: Path

    @property
    def ident(self) -> str:
        """The pid or the Slurm job id (shown in the log and the registry)."""
        ...

    def poll(self) -> ExecState: ...

    def cancel(self, grace: float) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``grace`` / scancel); returns when asked."""
        ...

    def exit_status(self) -> int | None:
        """The exit code once done, else None."""
        ...


class LocalProcess:
    """The local launch behind the interface: a ``worker.attempt.launcher`` process group."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc, self.log_path = proc, log_path
        self.tree = ProcessTree(proc.pid)

    @classmethod
    def start(cls, argv: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> LocalProcess:
        return cls(launcher.start(argv, log_path, env, cwd=cwd), log_path)

    @property
    def ident(self) -> str:
        return str(self.proc.pid)

    def poll(self) -> ExecState:
        return ExecState("running" if self.proc.poll() is None else "done")

    def cancel(self, grace: float) -> None:
        # The whole tree, even children that left the session (worker.attempt.proctree).
        self.tree.stop(grace, signal.SIGTERM, launcher=False)
        self.proc.wait(timeout=5)

    def exit_status(self) -> int | None:
        return self.proc.poll()


def attempt_class(settings: Settings) -> type[RunAttempt]:
    """The attempt for this worker's executor (imported lazily: a local worker needs no Slurm)."""
    if settings.executor == "slurm":
        from worker.attempt.slurm.attempt import SlurmAttempt

        return SlurmAttempt
    from worker.attempt.runner import RunAttempt

    return RunAttempt
