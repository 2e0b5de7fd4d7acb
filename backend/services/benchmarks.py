"""Benchmark scores of a run's checkpoints: stored when an ``evaluate`` job succeeds (one row per
checkpoint, task and metric; a later job of the same task replaces its rows), read per run for
the run page and per runs for Compare."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, delete, select

from backend.models import Checkpoint, CheckpointScore, Job, ScorePublic, utcnow
from cpt_contract.statuses import RunStatus


def _step(checkpoint: str) -> int | None:
    m = re.fullmatch(r"checkpoint-(\d+)", checkpoint)
    return int(m.group(1)) if m else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def after_job(session: Session, job: Job) -> int:
    """Store a succeeded evaluate job's scores (in the report's transaction); the rows written."""
    if job.kind != "evaluate" or job.status != RunStatus.succeeded or not job.run_id:
        return 0
    checkpoint = str(job.params["checkpoint"])
    written = 0
    now = utcnow()
    for task in (job.result or {}).get("tasks") or []:
        name = str(task.get("task", ""))[:200]
        if not name:
            continue
        session.exec(  # type: ignore[call-overload]
            delete(CheckpointScore).where(
                col(CheckpointScore.run_id) == job.run_id,
                col(CheckpointScore.checkpoint) == checkpoint,
                col(CheckpointScore.task) == name,
            )
        )
        for m in task.get("metrics") or []:
            session.add(
                CheckpointScore(
                    run_id=job.run_id,
                    checkpoint=checkpoint,
                    step=_step(checkpoint),
                    task=name,
                    metric=str(m.get("metric", ""))[:200],
                    value=_float(m.get("value")),
                    stderr=_float(m.get("stderr")),
                    samples=_int(task.get("samples")),
                    num_fewshot=_int(task.get("num_fewshot")),
                    job_id=job.id,
                    created_at=now,
                )
            )
            written += 1
    return written


def run_scores(session: Session, run_id: str) -> list[ScorePublic]:
    rows = session.exec(
        select(CheckpointScore)
        .where(CheckpointScore.run_id == run_id)
        .order_by(col(CheckpointScore.step), col(CheckpointScore.task), col(CheckpointScore.metric))
    )
    return [ScorePublic.model_validate(r, from_attributes=True) for r in rows]


def latest_scores(session: Session, run_ids: list[str]) -> dict[str, list[ScorePublic]]:
    """Per run, each task and metric at the latest checkpoint that has it (Compare's column)."""
    out: dict[str, dict[tuple[str, str], ScorePublic]] = {r: {} for r in run_ids}
    rows = session.exec(
        select(CheckpointScore)
        .where(col(CheckpointScore.run_id).in_(run_ids))
        .order_by(col(CheckpointScore.step))
    )
    for r in rows:  # ordered by step: the last one seen wins
        out[r.run_id][(r.task, r.metric)] = ScorePublic.model_validate(r, from_attributes=True)
    return {run: sorted(v.values(), key=lambda s: (s.task, s.metric)) for run, v in out.items()}


def verdict_scores(
    session: Session, run_ids: list[str]
) -> tuple[dict[str, str | None], dict[str, list[dict[str, Any]]]]:
    """For an experiment's verdict: each run's last checkpoint, and per run each task and metric
    as stored for its last checkpoint, or else for the latest checkpoint that has it (``final``
    says which). The stored rows as they are: nothing is recomputed."""
    last: dict[str, str | None] = {r: None for r in run_ids}
    if not run_ids:
        return last, {}
    for c in session.exec(
        select(Checkpoint)
        .where(col(Checkpoint.run_id).in_(run_ids))
        .order_by(col(Checkpoint.step), col(Checkpoint.id))
    ):
        last[c.run_id] = c.name  # ordered by step: the last one seen is the run's last
    out: dict[str, list[dict[str, Any]]] = {}
    for run_id, scores in latest_scores(session, run_ids).items():
        out[run_id] = [
            {**s.model_dump(exclude={"created_at"}), "final": s.checkpoint == last[run_id]}
            for s in scores
        ]
    return last, out
