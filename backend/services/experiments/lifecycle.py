"""An experiment's life: create (validated, nothing queued), launch (its runs queued as
ordinary runs), cancel (each active run cancelled through the state machine), resume (what did
not finish: from its newest checkpoint, or from the start when it has none)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session, col, select

from backend.models import Checkpoint, Experiment, Run, utcnow
from backend.services import disks, runs, state_machine
from backend.services.errors import Conflict, NotFound
from backend.services.experiments import grid
from cpt_contract.experiments import ExperimentSpec
from cpt_contract.outcomes import LAST_CHECKPOINT
from cpt_contract.settings import Settings
from cpt_contract.statuses import ACTIVE_STATUSES, TERMINAL_STATUSES, RunStatus

#: The tag every run of an experiment carries (runs list: filter by it).
TAG = "exp:{id}"


def _new_id(session: Session) -> str:
    while True:
        exp_id = "x-" + secrets.token_hex(3)
        if session.get(Experiment, exp_id) is None:
            return exp_id


def spec_of(exp: Experiment) -> ExperimentSpec:
    return ExperimentSpec.model_validate(exp.spec)


def create(settings: Settings, session: Session, spec: ExperimentSpec) -> tuple[Experiment, int]:
    """Store a validated experiment (the caller commits); returns it and its number of runs."""
    children = grid.expand(settings, session, spec)
    exp_id = _new_id(session)
    name = spec.name.strip() or f"experiment {exp_id}"
    exp = Experiment(id=exp_id, name=name, spec=spec.model_dump(mode="json"))
    session.add(exp)
    return exp, len(children)


def get(session: Session, exp_id: str, *, for_update: bool = False) -> Experiment:
    stmt = select(Experiment).where(Experiment.id == exp_id)
    if for_update:
        stmt = stmt.with_for_update()
    exp = session.exec(stmt).first()
    if exp is None:
        raise NotFound(f"experiment {exp_id} not found")
    return exp


def runs_of(session: Session, exp_id: str) -> list[Run]:
    """The experiment's runs in launch order."""
    stmt = select(Run).where(Run.experiment_id == exp_id).order_by(col(Run.created_at), col(Run.id))
    return list(session.exec(stmt).all())


def _label(values: dict[str, Any]) -> str:
    parts = []
    for path, value in values.items():
        shown = str(value)
        if "/" in shown:
            shown = shown.rstrip("/").rsplit("/", 1)[-1]
        parts.append(f"{path.rsplit('.', 1)[-1]}={shown}")
    return ", ".join(parts)


def launch(settings: Settings, session: Session, exp: Experiment) -> list[Run]:
    """Queue one run per combination (the caller commits, then enqueues them)."""
    if exp.launched_at is not None:
        raise Conflict(
            f"experiment {exp.id} was launched already: resume it to run what did not finish"
        )
    spec = spec_of(exp)
    children = grid.expand(settings, session, spec)  # the paths may have changed since
    made = []
    for child in children:
        disks.check_checkpoints_fit(session, settings, child.config)
        name = f"{exp.name} · {_label(child.values)}" if child.values else exp.name
        run = runs.new_run(settings, session, name[:200], spec.preset, child.config)
        run.experiment_id = exp.id
        run.experiment_values = dict(child.values)
        run.tags = [TAG.format(id=exp.id)]
        made.append(run)
    exp.launched_at = exp.updated_at = utcnow()
    return made


def cancel(session: Session, exp: Experiment) -> list[Run]:
    """Cancel every active run (queued at once, running through its worker)."""
    changed = []
    for run in runs_of(session, exp.id):
        if run.status in ACTIVE_STATUSES and run.status != RunStatus.cancelling:
            runs.cancel_run(run)
            changed.append(run)
    exp.updated_at = utcnow()
    return changed


def unfinished(run: Run) -> bool:
    """Ended without its answer: failed, or cancelled other than by early stopping."""
    return run.status in (RunStatus.failed, RunStatus.cancelled) and not run.stop_reason


def resume(session: Session, exp: Experiment) -> list[Run]:
    """Queue again every run that did not finish (the caller commits and enqueues)."""
    if exp.launched_at is None:
        raise Conflict(f"experiment {exp.id} has not been launched: launch it")
    resumed = []
    for run in runs_of(session, exp.id):
        if not unfinished(run):
            continue
        has_checkpoint = session.exec(
            select(Checkpoint.id).where(Checkpoint.run_id == run.id).limit(1)
        ).first()
        if has_checkpoint is not None:
            runs.resume_run(session, run, LAST_CHECKPOINT)
        else:
            # Nothing saved: start again from the beginning as the next attempt.
            state_machine.resume(run, LAST_CHECKPOINT, step=0)
            run.resume_from = None
        resumed.append(run)
    if not resumed:
        raise Conflict(
            f"experiment {exp.id}: every run finished or is still going; nothing to resume"
        )
    exp.updated_at = utcnow()
    return resumed


def status(exp: Experiment, members: list[Run]) -> str:
    """draft | running | finished (every run succeeded or was stopped early) | incomplete
    (some failed or were cancelled: resume runs them) — from the runs, never stored."""
    if exp.launched_at is None:
        return "draft"
    if any(r.status in ACTIVE_STATUSES for r in members):
        return "running"
    if all(r.status == RunStatus.succeeded or r.stop_reason for r in members):
        return "finished"
    return "incomplete"


def counts(members: list[Run]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in members:
        key = "stopped_early" if r.stop_reason and r.status in TERMINAL_STATUSES else r.status
        out[key] = out.get(key, 0) + 1
    return out


def delete(session: Session, exp: Experiment) -> None:
    """A draft, or one whose runs all ended; its runs stay (unlinked, tag kept)."""
    members = runs_of(session, exp.id)
    if any(r.status in ACTIVE_STATUSES for r in members):
        raise Conflict(f"experiment {exp.id} has runs going: cancel it first")
    for run in members:
        run.experiment_id = None
    session.delete(exp)
