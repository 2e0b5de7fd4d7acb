"""The verdict: one row per run, the winner under the forgetting cap, the Pareto front, the
rungs of early stopping and the samples side by side.

Every number is read from what ingest stored: bits/char from the metrics store
(``metrics/read.py``: the first point of a set's series is its step-0 baseline, the last its
end), tokens and time from the run row, parameters and world size from the run's ``start``
event, samples from its ``sample`` events, benchmark scores from the rows the ``evaluate`` jobs
stored (``benchmarks.verdict_scores``: the run's last checkpoint, or the latest one scored). Runs
are compared only where they scored the same text (``comparability``); a run that did not is
flagged and left out of the winner.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from sqlmodel import Session

from backend.models import Experiment, Run
from backend.services import benchmarks, comparability, queries, runs
from backend.services.experiments import lifecycle
from backend.services.experiments.grid import axis_names
from backend.services.experiments.halving import kept
from backend.services.metrics import read as metric_read
from cpt_contract.experiments import ExperimentSpec
from cpt_contract.statuses import RunStatus

_BPC = re.compile(r"^eval_(.+)_bits_per_char$")
#: Points of the target curve per run (the store thins exactly and keeps first and last).
CURVE_POINTS = 2000


def _series(session: Session, run: Run) -> dict[str, dict[str, list[Any]]]:
    """Every bits/char series of the run as the metrics store answers it, by set name."""
    conn = session.connection()
    keys = [k for _, k in metric_read.run_series(conn, run.id) if _BPC.match(k)]
    if not keys:
        return {}
    out = metric_read.read(conn, run.id, keys, None, None, CURVE_POINTS, None)["series"]
    return {m.group(1): s for k, s in out.items() if (m := _BPC.match(k))}


def _set_figures(series: dict[str, list[Any]]) -> dict[str, Any]:
    steps, values = series["step"], series["value"]
    start, end = values[0], values[-1]
    return {
        "start_step": steps[0],
        "start": start,
        "end_step": steps[-1],
        "end": end,
        "change": end - start if steps[-1] != steps[0] else None,
    }


def _pareto(points: dict[str, tuple[float, float]]) -> list[str]:
    """Runs no other run beats on both target and retain bits/char (lower is better)."""
    front = []
    for rid, (t, r) in points.items():
        dominated = any(
            (t2 <= t and r2 <= r) and (t2 < t or r2 < r)
            for other, (t2, r2) in points.items()
            if other != rid
        )
        if not dominated:
            front.append(rid)
    return front


def _samples(session: Session, members: list[Run]) -> dict[str, Any]:
    """Each run's samples at its last evaluation with samples, lined up by (set, prompt, mode)."""
    steps: dict[str, int | None] = {}
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for run in members:
        found = queries.samples(session, run, None)
        last = found["steps"][-1] if found["steps"] else None
        steps[run.id] = last
        for s in found["samples"]:
            if s["step"] != last:
                continue
            rows.setdefault((s["set"], s["prompt"], s["mode"]), {})[run.id] = s["text"]
    prompts = [
        {"set": k[0], "prompt": k[1], "mode": k[2], "texts": texts}
        for k, texts in sorted(rows.items(), key=lambda kv: (kv[0][2] != "greedy", kv[0]))
    ]
    return {"steps": steps, "prompts": prompts}


def verdict(session: Session, exp: Experiment) -> dict[str, Any]:
    spec = ExperimentSpec.model_validate(exp.spec)
    members = lifecycle.runs_of(session, exp.id)
    record = exp.rungs or {}
    stopped = record.get("stopped", {})
    axes = axis_names(spec)
    judged = [spec.target, *spec.retain]
    infos = {r.id: comparability.set_infos(session, r.id) for r in members}
    last_checkpoint, scores = benchmarks.verdict_scores(session, [r.id for r in members])

    # The text each judged set scored: the most common signature is the reference.
    reference: dict[str, tuple[Any, ...] | None] = {}
    warnings = []
    for name in judged:
        sigs = [comparability.signature(infos[r.id].get(name)) for r in members if infos[r.id]]
        common = Counter(s for s in sigs if s is not None).most_common(1)
        reference[name] = common[0][0] if common else None
        reported = [(r.name or r.id, infos[r.id].get(name)) for r in members if infos[r.id]]
        diff = comparability.text_difference(name, reported)
        if diff:
            warnings.append(diff)

    rows: list[dict[str, Any]] = []
    for run in members:
        public = runs.to_public(run)
        start = comparability.start_event(session, run.id)
        series = _series(session, run)
        sets = {name: _set_figures(s) for name, s in series.items() if s["step"]}
        target = sets.get(spec.target)
        forgetting = {n: (sets[n]["change"] if n in sets else None) for n in spec.retain}
        known = all(v is not None for v in forgetting.values())
        within = (
            all(v is not None and v <= spec.forgetting_cap for v in forgetting.values())
            if known
            else None
        )
        same_text = all(
            reference[n] is not None
            and comparability.signature(infos[run.id].get(n)) == reference[n]
            for n in judged
        )
        world = int(start.get("world_size") or 0) or None
        wall = public.duration_seconds
        finished = run.status == RunStatus.succeeded
        eligible = bool(
            finished and target and target["change"] is not None and within and same_text
        )
        curve = series.get(spec.target, {"step": [], "tokens_seen": [], "value": []})
        rows.append(
            {
                "run_id": run.id,
                "name": run.name,
                "status": run.status,
                "status_reason": run.status_reason,
                "stopped_early": stopped.get(run.id) if run.stop_reason else None,
                "values": run.experiment_values or {},
                "method": run.method,
                "trainable_params": start.get("trainable_params"),
                "total_params": start.get("total_params"),
                "tokens_seen": run.tokens_seen,
                "step": run.step,
                "wall_seconds": wall,
                "world_size": world,
                "device_hours": wall * world / 3600 if wall is not None and world else None,
                "attempts": run.attempt,
                "sets": sets,
                "forgetting": forgetting,
                "within_cap": within,
                "same_text": same_text,
                "eligible": eligible,
                "last_checkpoint": last_checkpoint.get(run.id),
                "scores": scores.get(run.id, []),
                "curve": {
                    "step": curve["step"],
                    "tokens_seen": curve["tokens_seen"],
                    "value": curve["value"],
                },
            }
        )

    candidates = sorted(
        (r for r in rows if r["eligible"]), key=lambda r: r["sets"][spec.target]["end"]
    )
    winner = None
    if candidates:
        best = candidates[0]
        second = candidates[1] if len(candidates) > 1 else None
        winner = {
            "run_id": best["run_id"],
            "name": best["name"],
            "target_bits_per_char": best["sets"][spec.target]["end"],
            "runner_up": second["run_id"] if second else None,
            "runner_up_bits_per_char": second["sets"][spec.target]["end"] if second else None,
            "margin": (second["sets"][spec.target]["end"] - best["sets"][spec.target]["end"])
            if second
            else None,
        }
    no_winner = None
    if winner is None:
        done = [r for r in rows if r["status"] == RunStatus.succeeded]
        if not done:
            no_winner = "no run has finished yet"
        elif not any(r["within_cap"] for r in done):
            no_winner = "no run is within the cap"
        else:
            no_winner = "no finished run within the cap scored the same text as the others"

    pareto = {}
    for name in spec.retain:
        points = {
            r["run_id"]: (r["sets"][spec.target]["end"], r["sets"][name]["end"])
            for r in rows
            if spec.target in r["sets"]
            and name in r["sets"]
            and r["same_text"]
            and r["status"] == RunStatus.succeeded
        }
        pareto[name] = _pareto(points)

    return {
        "experiment": {
            "id": exp.id,
            "name": exp.name,
            "status": lifecycle.status(exp, members),
            "counts": lifecycle.counts(members),
            "created_at": exp.created_at,
            "launched_at": exp.launched_at,
            "owner": exp.owner,
        },
        "spec": exp.spec,
        "axes": axes,
        "target": spec.target,
        "retain": spec.retain,
        "forgetting_cap": spec.forgetting_cap,
        "sets": [*judged, *sorted({n for r in rows for n in r["sets"]} - set(judged))],
        "rows": rows,
        "benchmarks": [
            {"task": t, "metric": m}
            for t, m in sorted({(s["task"], s["metric"]) for r in rows for s in r["scores"]})
        ],
        "winner": winner,
        "no_winner": no_winner,
        "pareto": pareto,
        "rungs": _rungs(spec, record, len(members)),
        "warnings": warnings,
        "samples": _samples(session, members),
    }


def _rungs(spec: ExperimentSpec, record: dict[str, Any], total: int) -> list[dict[str, Any]]:
    if spec.early_stopping is None:
        return []
    stopped = record.get("stopped", {})
    out = []
    for rung_key in sorted(record.get("rungs", {}), key=int):
        rung = int(rung_key)
        at = record["rungs"][rung_key]
        limit = kept(total, spec.early_stopping.keep, rung)
        ordered = sorted(at.items(), key=lambda kv: kv[1]["value"])
        cutoff = ordered[limit - 1][1]["value"] if len(ordered) > limit else None
        out.append(
            {
                "rung": rung,
                "kept": limit,
                "cutoff": cutoff,
                "runs": [
                    {
                        "run_id": rid,
                        "step": p["step"],
                        "value": p["value"],
                        "stopped": stopped.get(rid, {}).get("rung") == rung,
                    }
                    for rid, p in ordered
                ],
            }
        )
    return out
