"""Early stopping by successive halving, decided on the server as evaluations are ingested.

Rung k is a run's k-th evaluation after step 0. At rung k only the best ``keep ** k`` share of
the experiment's runs (at least one) goes on: a run is stopped once that many runs of the
experiment scored a lower target bits/char at the same rung — as it reaches the rung, or later,
when a run reaching the rung after it does better. Runs that have not got there yet are never
judged on guesses. A stopped run goes through the ordinary cancel path (``cancelling``, the
worker stops it, its checkpoints stay) and ends ``cancelled`` with ``Run.stop_reason``.

Locks: ingest holds the reporting run's row and takes the experiment's; another run's row is
never taken while the experiment's is held (two runs reporting at once would deadlock on
PostgreSQL). So the reporting run is stopped in the ingest's transaction, and a run that falls
out because of another's evaluation is stopped right after the commit, in its own transaction
(``stop_others``: the session's ``info[PENDING]`` carries the decisions there).

The record lives on the experiment (``Experiment.rungs``): ``runs`` (per run the evaluation
steps counted), ``rungs`` (per rung per run ``{step, value}``), ``stopped`` (per run
``{rung, step, value, cutoff}``): the verdict shows it as it was decided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, select

from backend.core.db import write_session
from backend.models import Experiment, Run, utcnow
from backend.services import state_machine
from cpt_contract.experiments import STOPPED_EARLY, ExperimentSpec
from cpt_contract.settings import Settings
from cpt_contract.statuses import RunStatus

#: Statuses in which a run can still be stopped (queued runs have no rung yet).
_STOPPABLE = (RunStatus.starting, RunStatus.running)
#: ``Session.info`` key: (run id, reason) of other runs to stop once ingest has committed.
PENDING = "experiment_stops"


def kept(total: int, keep: float, rung: int) -> int:
    """How many runs go on past ``rung``."""
    return max(1, math.ceil(total * keep**rung - 1e-9))


def on_evals(
    session: Session, run: Run, evals: Iterable[tuple[int | None, dict[str, Any]]]
) -> None:
    """Record the run's new evaluations of the target set and stop whoever fell out of the
    kept share at a rung: this run at once, others after the commit (``stop_others``)."""
    exp = session.exec(
        select(Experiment).where(Experiment.id == run.experiment_id).with_for_update()
    ).first()
    if exp is None or not (exp.spec or {}).get("early_stopping"):
        return
    spec = ExperimentSpec.model_validate(exp.spec)
    assert spec.early_stopping is not None
    key = f"eval_{spec.target}_bits_per_char"
    record = {k: dict(v) for k, v in (exp.rungs or {}).items()}
    runs_seen = record.setdefault("runs", {})
    rungs = record.setdefault("rungs", {})
    record.setdefault("stopped", {})
    new_rungs = []
    for step, data in evals:
        value = data.get(key)
        if step is None or step <= 0 or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        steps = list(runs_seen.get(run.id, []))
        if step in steps:
            continue  # a resumed attempt evaluating a step again
        steps.append(step)
        runs_seen[run.id] = steps
        rung = len(steps)
        if spec.early_stopping.max_rungs is not None and rung > spec.early_stopping.max_rungs:
            continue
        at = dict(rungs.get(str(rung), {}))
        at[run.id] = {"step": step, "value": float(value)}
        rungs[str(rung)] = at
        new_rungs.append(rung)
    if not new_rungs:
        return
    # Read without locking: only the reporting run (locked by the caller) changes here.
    statuses = dict(
        session.exec(select(Run.id, Run.status).where(Run.experiment_id == exp.id)).all()
    )
    statuses[run.id] = run.status
    max_steps = dict(
        session.exec(select(Run.id, Run.max_steps).where(Run.experiment_id == exp.id)).all()
    )
    for rung in sorted(set(new_rungs)):
        for run_id, reason in _judge(record, rung, statuses, max_steps, spec.early_stopping.keep):
            if run_id == run.id:
                stop(run, reason)
            else:
                session.info.setdefault(PENDING, []).append((run_id, reason))
    exp.rungs = record  # a new dict: the JSON column notices a reassignment only
    exp.updated_at = utcnow()


def stop(run: Run, reason: str) -> bool:
    """The ordinary cancel path, with the reason the run will end with; False if it is no
    longer running (it ended meanwhile)."""
    if run.status not in _STOPPABLE:
        return False
    state_machine.transition(run, RunStatus.cancelling, reason, verb="cancel")
    run.stop_reason = reason
    return True


def _judge(
    record: dict[str, Any],
    rung: int,
    statuses: dict[str, str],
    max_steps: dict[str, int | None],
    keep: float,
) -> list[tuple[str, str]]:
    """(run id, reason) of the runs to stop at ``rung``; recorded as stopped."""
    at: dict[str, dict[str, Any]] = record["rungs"].get(str(rung), {})
    limit = kept(len(statuses), keep, rung)
    if len(at) <= limit:
        return []
    ordered = sorted(at.items(), key=lambda kv: kv[1]["value"])
    cutoff = ordered[limit - 1][1]["value"]
    out = []
    for run_id, point in ordered[limit:]:
        if statuses.get(run_id) not in _STOPPABLE or run_id in record["stopped"]:
            continue
        if point["value"] <= cutoff:
            continue  # a tie with the last kept run: keep both
        last = max_steps.get(run_id)
        if last is not None and point["step"] >= last:
            continue  # its final evaluation: it is ending anyway
        reason = STOPPED_EARLY.format(rung=rung, value=point["value"], cutoff=cutoff)
        record["stopped"][run_id] = {
            "rung": rung,
            "step": point["step"],
            "value": point["value"],
            "cutoff": cutoff,
        }
        out.append((run_id, reason))
    return out


def stop_others(settings: Settings, stops: list[tuple[str, str]]) -> list[Run]:
    """Stop the runs another run's evaluation put out, each in its own transaction (after the
    ingest's commit: see the module's note on locks); returns those it stopped."""
    stopped = []
    for run_id, reason in stops:
        with write_session(settings) as session:
            run = session.exec(select(Run).where(Run.id == run_id).with_for_update()).first()
            if run is not None and stop(run, reason):
                session.commit()
                stopped.append(run)
    return stopped
