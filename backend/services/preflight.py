"""Before a run is queued: can any live worker of its queue run it? (``cpt_contract.fit``)

A queue with no live worker is only a warning (a worker may start later); a queue whose every
live worker would refuse the run is a 422 at the field, with the fix.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from backend.models import Worker, utcnow
from backend.services.validation import ConfigInvalid, error
from cpt_contract.fit import fit_problems
from cpt_contract.runconfig.schema import RunConfig
from cpt_contract.settings import Settings


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


def preflight(settings: Settings, session: Session, config: RunConfig) -> list[str]:
    """Raise ``ConfigInvalid`` when no live worker can run it; return the warnings."""
    queue = config.launch.queue
    workers = live_workers(settings, session, queue)
    if not workers:
        return [f"no live worker on queue {queue!r}: the run waits until one starts"]
    per_worker = [
        fit_problems(config, cpu_only=w.cpu_only, gpu_count=len(w.gpus), cpu_count=None)
        for w in workers
    ]
    if all(per_worker):
        problems = per_worker[0]
        kinds = "CPU-only" if all(w.cpu_only for w in workers) else "live"
        raise ConfigInvalid(
            [
                error(
                    ["body", "config", *loc],
                    f"{msg} (every {kinds} worker on queue {queue!r} would refuse it)",
                    "does_not_fit",
                )
                for loc, msg in problems
            ]
        )
    return []
