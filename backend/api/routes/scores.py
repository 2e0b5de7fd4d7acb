"""Benchmark scores of checkpoints (``evaluate`` jobs): a run's, and the latest of several runs
for Compare. Queuing an evaluation is ``POST /api/jobs`` with kind ``evaluate``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from backend.api.deps import SessionDep, require_api_token
from backend.api.routes.common import AUTH, NOT_FOUND
from backend.models import ScorePublic
from backend.services import benchmarks, runs

router = APIRouter(tags=["scores"], dependencies=[Depends(require_api_token)], responses=AUTH)


@router.get("/runs/{run_id}/scores", response_model=list[ScorePublic], responses=NOT_FOUND)
def run_scores(run_id: str, session: SessionDep) -> list[ScorePublic]:
    """Every task and metric of every evaluated checkpoint, by step."""
    runs.get_run(session, run_id)
    return benchmarks.run_scores(session, run_id)


@router.get("/scores/latest", response_model=dict[str, list[ScorePublic]])
def latest_scores(
    session: SessionDep, run: Annotated[list[str], Query(max_length=50)]
) -> dict[str, list[ScorePublic]]:
    """Per run (``?run=a&run=b``), each task and metric at its latest evaluated checkpoint."""
    return benchmarks.latest_scores(session, [r[:32] for r in run])
