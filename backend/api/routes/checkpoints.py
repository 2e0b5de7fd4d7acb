"""A run's checkpoints: list, download as a streamed tar, merge a LoRA one into the base model."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.api.deps import SessionDep, SettingsDep, require_api_token_or_query
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND, ErrorDetail
from backend.models import CheckpointPublic
from backend.services import checkpoints, enqueue, runs
from backend.services.errors import Conflict, NotFound

# ?token= as well as the header: the browser downloads a checkpoint with a plain link
# (a multi-GB tar must stream to disk, not through a fetch() Blob), and links send no headers.
router = APIRouter(
    tags=["checkpoints"],
    dependencies=[Depends(require_api_token_or_query)],
    responses={**AUTH, **NOT_FOUND},
)


class MergeQueued(BaseModel):
    output: str
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
    run_id: str, name: str, session: SessionDep, settings: SettingsDep
) -> StreamingResponse:
    ckpt = checkpoints.get_checkpoint(session, run_id, name)
    path = checkpoints.local_dir(settings, ckpt)
    if path is None:
        raise NotFound(
            f"checkpoint {name} is not on the API's disk ({ckpt.path}): "
            "it lives on the worker box, or it was rotated away by save_total_limit"
        )
    filename = f"{run_id}-{name}.tar"
    return StreamingResponse(
        checkpoints.tar_stream(path, name),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/runs/{run_id}/checkpoints/{name}/merge",
    response_model=MergeQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CONFLICT,
)
def merge_checkpoint(
    run_id: str, name: str, session: SessionDep, settings: SettingsDep
) -> MergeQueued:
    run = runs.get_run(session, run_id)
    ckpt = checkpoints.get_checkpoint(session, run_id, name)
    if run.method != "lora":
        raise Conflict(f"run {run_id} trained all weights: {name} is already a full model")
    output = runs.run_paths(settings, run_id).merged(name)
    model = run.config.get("model", {})
    enqueue.send_merge(
        settings,
        run.queue,
        {
            "run_id": run_id,
            "checkpoint": name,
            "checkpoint_path": ckpt.path,
            "base_model": model.get("model_name_or_path"),
            "tokenizer": model.get("tokenizer_name_or_path"),
            "output_dir": str(output),
        },
    )
    return MergeQueued(output=str(output))
