"""Why a queued run waits: its queue, its place in it, and what the queue's workers are doing.

Measured from the database only (heartbeats and run rows), so the UI never shows a guess.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from backend.models import Run
from backend.services import hub_models, workers
from cpt_contract.settings import Settings
from cpt_contract.statuses import RunStatus


def waiting_reason(settings: Settings, session: Session, run: Run) -> str | None:
    if run.status != RunStatus.queued:
        return None
    download = hub_models.waiting_for(settings, session, run)
    if download is not None:
        return hub_models.reason(settings, session, download)
    ahead = session.exec(
        select(func.count())
        .select_from(Run)
        .where(
            Run.status == RunStatus.queued,
            Run.queue == run.queue,
            col(Run.created_at) < run.created_at,
        )
    ).one()
    position = f"position {int(ahead) + 1} in queue {run.queue}"
    live = workers.live_workers(session, settings, run.queue)
    if not live:
        return f"waiting for a worker on queue {run.queue}: none is alive ({position})"
    busy = [w for w in live if not workers.has_room(w)]
    if len(busy) == len(live):
        doing = "; ".join(f"{w.name} busy with {', '.join(w.current_runs)}" for w in busy)
        return f"waiting for a worker on queue {run.queue}: {doing} ({position})"
    return f"waiting for a free worker on queue {run.queue} to pick it up ({position})"
