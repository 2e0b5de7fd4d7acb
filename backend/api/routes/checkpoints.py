"""A run's checkpoints: list, download as a streamed tar, merge a LoRA one into the base model."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from backend.api.deps import SessionDep, SettingsDep, StreamUser, require_api_token_or_query
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND, ErrorDetail, attachment
from backend.core.db import write_session
from backend.models import CheckpointPublic, JobCreate
from backend.services import audit, checkpoints, jobs, model_card, runs
from backend.services.errors import NotFound

# ?token= as well as the header: the browser downloads a checkpoint with a plain link
# (a multi-GB tar must stream to disk, not through a fetch() Blob), and links send no headers.
router = APIRouter(
    tags=["checkpoints"],
    dependencies=[Depends(require_api_token_or_query)],
    responses={**AUTH, **NOT_FOUND},
)


class MergeQueued(BaseModel):
    output: str
    job_id: str
    status: Literal["queued"] = "queued"


@router.get("/runs/{run_id}/checkpoints", response_model=list[CheckpointPublic])
def list_checkpoints(
    run_id: str, session: SessionDep, settings: SettingsDep
) -> list[CheckpointPublic]:
    run = runs.get_run(session, run_id)
    return checkpoints.list_checkpoints(settings, session, run)


@router.get(
    "/runs/{run_id}/checkpoints/{name}/download",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-tar": {}}, "description": "The directory as a tar"},
        404: {"model": ErrorDetail},
    },
)
def download_checkpoint(
    me: StreamUser, run_id: str, name: str, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    ckpt = checkpoints.get_checkpoint(session, run_id, name)
    path = checkpoints.local_dir(settings, ckpt)
    if path is None:
        raise NotFound(
            f"checkpoint {name} is not on the API's disk ({ckpt.path}): "
            "it lives on the worker box, or it was rotated away by save_total_limit"
        )
    with write_session(settings) as db:  # recorded before a byte leaves
        audit.record(db, me, "checkpoint.download", f"run/{run_id}/checkpoints/{name}")
        db.commit()
    filename = f"{run_id}-{name}.tar"
    card = model_card.render(session, runs.get_run(session, run_id), name)
    return StreamingResponse(
        checkpoints.tar_stream(path, name, {"README.md": card}),
        media_type="application/x-tar",
        headers={"Content-Disposition": attachment(filename)},
    )


@router.get(
    "/runs/{run_id}/model-card",
    response_class=Response,
    responses={200: {"content": {"text/markdown": {}}, "description": "README.md"}},
)
def download_model_card(
    me: StreamUser, run_id: str, session: SessionDep, checkpoint: str | None = None
) -> Response:
    """The run's model card (at a checkpoint, else its end), as the README.md the checkpoint
    tarball, a merged model and a published repo carry: downloadable without publishing."""
    run = runs.get_run(session, run_id)
    if checkpoint is not None:
        checkpoints.get_checkpoint(session, run_id, checkpoint)  # 404 when it is not one
    return Response(
        model_card.render(session, run, checkpoint),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": attachment("README.md")},
    )


@router.post(
    "/runs/{run_id}/checkpoints/{name}/merge",
    response_model=MergeQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CONFLICT,
)
def merge_checkpoint(me: StreamUser, run_id: str, name: str, settings: SettingsDep) -> MergeQueued:
    """Queue a tracked merge job on the run's box (its job slot: never behind training)."""
    body = JobCreate(kind="merge", params={"run_id": run_id, "checkpoint": name})
    with write_session(settings) as session:
        job = jobs.create_job(settings, session, body)
        job.owner = me.name
        audit.record(
            session,
            me,
            "job.create",
            f"job/{job.id}",
            {"kind": "merge", "run_id": run_id, "checkpoint": name},
        )
        session.commit()
        if jobs.send(settings, job):
            job.enqueued_at = job.updated_at
            session.commit()
    output = runs.run_paths(settings, run_id).merged(name)
    return MergeQueued(output=str(output), job_id=job.id)


@router.get(
    "/jobs/{job_id}/download",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-tar": {}}, "description": "The job's output as a tar"},
        404: {"model": ErrorDetail},
    },
)
def download_job_output(
    me: StreamUser, job_id: str, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    """A finished job's output (a merged model, an extended tokenizer) as a streamed tar."""
    job = jobs.get_job(session, job_id)
    path = jobs.output_dir(settings, job)
    if path is None:
        raise NotFound(f"job {job_id} has no output on the API's disk")
    with write_session(settings) as db:  # recorded before a byte leaves
        audit.record(db, me, "job.download", f"job/{job_id}", {"kind": job.kind})
        db.commit()
    return StreamingResponse(
        checkpoints.tar_stream(path, path.name),
        media_type="application/x-tar",
        headers={"Content-Disposition": attachment(f"{job.id}-{path.name}.tar")},
    )
