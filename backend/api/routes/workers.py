"""``GET /api/workers``: the GPU boxes, from their heartbeats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlmodel import col, select

from backend.api.deps import SessionDep, SettingsDep, require_api_token
from backend.api.routes.common import AUTH
from backend.models import UtcDatetime, Worker, utcnow
from backend.services import workers
from cpt_contract.protocol import Volume
from cpt_contract.slurm import ClusterReport

router = APIRouter(tags=["workers"], dependencies=[Depends(require_api_token)], responses=AUTH)


class GpuPublic(BaseModel):
    """One GPU as the worker's heartbeat reports it (``worker/gpu.py::GpuInfo``)."""

    index: int = 0
    name: str = ""
    memory_total_mb: int | None = None
    memory_used_mb: int | None = None
    utilization_pct: int | None = None
    #: The run holding it, None while free.
    run_id: str | None = None


class WorkerPublic(BaseModel):
    name: str
    host: str
    queue: str
    concurrency: int
    gpus: list[GpuPublic]
    cpu_only: bool
    current_runs: list[str]
    last_heartbeat: UtcDatetime
    alive: bool
    #: ``local`` (torchrun on the box) or ``slurm`` (the worker submits to a Slurm cluster).
    executor: str = "local"
    #: A Slurm worker's partitions with idle/allocated nodes (``sinfo``), else None.
    cluster: ClusterReport | None = None
    #: Free space of its volumes at its last heartbeat.
    volumes: list[Volume] = []


def _cluster(raw: dict[str, Any] | None) -> ClusterReport | None:
    if not raw:
        return None
    try:
        return ClusterReport.model_validate(raw)
    except ValueError:
        return None


@router.get("/workers", response_model=list[WorkerPublic])
def list_workers(session: SessionDep, settings: SettingsDep) -> list[WorkerPublic]:
    now = utcnow()
    out = []
    for w in session.exec(select(Worker).order_by(col(Worker.name))):
        out.append(
            WorkerPublic(
                name=w.name,
                host=w.host,
                queue=w.queue,
                concurrency=w.concurrency,
                gpus=[GpuPublic.model_validate(g) for g in w.gpus],
                cpu_only=w.cpu_only,
                current_runs=w.current_runs,
                last_heartbeat=workers.last_beat(w),
                alive=workers.is_alive(w, settings, now),
                executor=w.executor,
                cluster=_cluster(w.cluster),
                volumes=[Volume.model_validate(v) for v in w.volumes or []],
            )
        )
    return out
