"""Early stopping by successive halving, decided on the server as evaluations are ingested.

Rung k is a run's k-th evaluation after step 0. At rung k only the best ``keep ** k`` share of
the experiment's runs (at least one) goes on: a run is stopped once that many runs of the
experiment scored a lower target bits/char at the same rung — as it reaches the rung, or later,
when a run reaching the rung after it does better. Runs that have not got there yet are never
judged on guesses. A stopped run goes through the ordinary cancel path (``cancelling``, the
worker stops it, its checkpoints stay) and ends ``cancelled`` with ``Run.stop_reason``.

The record lives on the experiment (``Experiment.rungs``): ``runs`` (per run the evaluation
steps counted), ``rungs`` (per rung per run ``{step, value}``), ``stopped`` (per run
``{rung, step, value, cutoff}``): the verdict shows it as it was decided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from backend.models import Experiment, Run, utcnow
from backend.services import state_machine
from cpt_contract.experiments import STOPPED_EARLY, ExperimentSpec
from cpt_contract.statuses import RunStatus

#: Statuses in which a run can still be stopped (queued runs have no rung yet).
_STOPPABLE = (RunStatus.starting, RunStatus.running)


def kept(total: int, keep: float, rung: int) -> int:
    """How many runs go on past ``rung``."""
    return max(1, math.ceil(total * keep**rung - 1e-9))


def on_evals(
    session: Session, run: Run, evals: Iterable[tuple[int | None, dict[str, Any]]]
) -> list[Run]:
    """Record the run's new evaluations of the target set and stop whoever fell out of the
    kept share at a rung; returns the runs it stopped (the caller commits and publishes)."""
    exp = session.exec(
        select(Experiment).where(Experiment.id == run.experiment_id).with_for_update()
    ).first()
    if exp is None or not (exp.spec or {}).get("early_stopping"):
        return []
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
        return []
    members = {
        r.id: r
        for r in session.exec(
            select(Run).where(Run.experiment_id == exp.id).order_by(col(Run.created_at))
        ).all()
    }
    members[run.id] = run  # the caller's object, with its unsaved changes
    stopped: list[Run] = []
    for rung in sorted(set(new_rungs)):
        stopped += _judge(record, rung, members, spec.early_stopping.keep)
    exp.rungs = record  # a new dict: the JSON column notices a reassignment only
    exp.updated_at = utcnow()
    return stopped


def _judge(record: dict[str, Any], rung: int, members: dict[str, Run], keep: float) -> list[Run]:
    at: dict[str, dict[str, Any]] = record["rungs"].get(str(rung), {})
    limit = kept(len(members), keep, rung)
    if len(at) <= limit:
        return []
    ordered = sorted(at.items(), key=lambda kv: kv[1]["value"])
    cutoff = ordered[limit - 1][1]["value"]
    out = []
    for run_id, point in ordered[limit:]:
        member = members.get(run_id)
        if member is None or member.status not in _STOPPABLE or run_id in record["stopped"]:
            continue
        if point["value"] <= cutoff:
            continue  # a tie with the last kept run: keep both
        if member.max_steps is not None and point["step"] >= member.max_steps:
            continue  # its final evaluation: it is ending anyway
        reason = STOPPED_EARLY.format(rung=rung, value=point["value"], cutoff=cutoff)
        state_machine.transition(member, RunStatus.cancelling, reason, verb="cancel")
        member.stop_reason = reason
        record["stopped"][run_id] = {
            "rung": rung,
            "step": point["step"],
            "value": point["value"],
            "cutoff": cutoff,
        }
        out.append(member)
    return out
