"""Before a run is queued: can any live worker of its queue run it? (``cpt_contract.fit``)

A Slurm worker's heartbeat carries its ``sinfo`` report: a partition that does not exist, more
nodes than the partition has or a time limit above its maximum is refused here, at the field,
instead of becoming a job that pends forever.

A queue with no live worker is only a warning (a worker may start later); a queue whose every
live worker would refuse the run is a 422 at the field, with the fix.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from backend.models import Worker, utcnow
from backend.services.validation import ErrorList, error
from cpt_contract.fit import Problem, fit_problems, slurm_problems
from cpt_contract.runconfig.schema import LaunchSection, TrainingSection
from cpt_contract.settings import Settings
from cpt_contract.slurm import ClusterReport


def live_workers(settings: Settings, session: Session, queue: str) -> list[Worker]:
    since = utcnow() - timedelta(seconds=settings.worker_lost_seconds)
    found = session.exec(select(Worker).where(Worker.queue == queue)).all()
    out = []
    for w in found:
        beat = (
            w.last_heartbeat
            if w.last_heartbeat.tzinfo
            else w.last_heartbeat.replace(tzinfo=since.tzinfo)
        )
        if beat >= since:
            out.append(w)
    return out


def _sections(merged: dict[str, Any]) -> tuple[TrainingSection, LaunchSection] | None:
    try:
        training = TrainingSection.model_validate(merged.get("training") or {})
        launch = LaunchSection.model_validate(merged.get("launch") or {})
    except ValidationError:
        return None  # those fields have their own 422s
    return training, launch


def _problems(training: TrainingSection, launch: LaunchSection, worker: Worker) -> list[Problem]:
    """What this worker would refuse: its box (local) or its cluster's partitions (Slurm)."""
    problems = fit_problems(
        training,
        launch,
        cpu_only=worker.cpu_only,
        gpu_count=len(worker.gpus),
        cpu_count=None,
        executor=worker.executor,
    )
    if worker.executor == "slurm" and worker.cluster:
        try:
            cluster = ClusterReport.model_validate(worker.cluster)
        except ValidationError:
            return problems  # an older or broken report: the worker checks again itself
        problems += slurm_problems(launch, cluster)
    return problems


def check(
    settings: Settings, session: Session, merged: dict[str, Any]
) -> tuple[ErrorList, list[str]]:
    """The errors (when no live worker of the queue could run it) and the warnings."""
    sections = _sections(merged)
    if sections is None:
        return [], []
    training, launch = sections
    queue = launch.queue
    workers = live_workers(settings, session, queue)
    if not workers:
        return [], [f"no live worker on queue {queue!r}: the run waits until one starts"]
    per_worker = [_problems(training, launch, w) for w in workers]
    if not all(per_worker):
        return [], []
    if all(w.executor == "slurm" for w in workers):
        kinds = "Slurm"
    else:
        kinds = "CPU-only" if all(w.cpu_only for w in workers) else "live"
    errors = [
        error(
            ["body", "config", *loc],
            f"{msg} (every {kinds} worker on queue {queue!r} would refuse it)",
            "does_not_fit",
        )
        for loc, msg in per_worker[0]
    ]
    return errors, []
