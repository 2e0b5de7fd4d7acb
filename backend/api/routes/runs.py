"""Runs: list, create, preview, show, delete, cancel, resume, clone, command."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ValidationError

from backend.api.deps import SessionDep, SettingsDep, require_api_token
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND
from backend.core.db import write_session
from backend.models import RunClone, RunCreate, RunList, RunPublic, RunResume, RunUpdate
from backend.services import enqueue, jobs, runs, waiting
from backend.services.checkpoints import runs_with_checkpoint
from backend.services.errors import Conflict
from backend.services.estimates import Estimates, estimates, sampling_warning
from backend.services.notify import publish_run
from cpt_contract.limits import INT32
from cpt_contract.runconfig.argv import display_command
from cpt_contract.runconfig.schema import RunConfig
from cpt_contract.statuses import ACTIVE_STATUSES, RESUME_LAST_STATUSES, RunStatus

router = APIRouter(tags=["runs"], dependencies=[Depends(require_api_token)], responses=AUTH)


class Command(BaseModel):
    argv: list[str]
    command: str


class AttemptCommand(Command):
    attempt: int


class RunCommand(Command):
    """The derived command (what the next launch would run), and per attempt the argv the
    worker really launched (None of these before a worker has launched the run)."""

    attempts: list[AttemptCommand] = []


class Preview(Command):
    config: dict[str, Any]
    estimates: Estimates
    #: What may keep the run from starting soon, though it is valid (e.g. no live worker).
    warnings: list[str] = []


@router.get("/runs", response_model=RunList)
def list_runs(
    session: SessionDep,
    settings: SettingsDep,
    status_: Annotated[list[RunStatus] | None, Query(alias="status")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in name, id, model, tags, note")
    ] = None,
    tag: Annotated[list[str] | None, Query(description="Only runs with every tag given")] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=120,
            description="A column (loss, started_at...), config.<section>.<field> or "
            "metric.<key>.last|best; '-' first for descending. Default: newest first.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32)] = 0,
) -> RunList:
    items, total = runs.list_runs(session, status_, q, limit, offset, tag, sort)
    # One query for the page: which runs "Resume" (from the last checkpoint) may be offered for.
    stopped = [r.id for r in items if r.status in RESUME_LAST_STATUSES]
    saved = runs_with_checkpoint(settings, session, stopped)
    return RunList(
        items=[runs.to_public(r, has_checkpoint=r.id in saved) for r in items], total=total
    )


@router.post("/runs", response_model=RunPublic, status_code=status.HTTP_201_CREATED)
def create_run(body: RunCreate, settings: SettingsDep) -> RunPublic:
    with write_session(settings) as session:
        run = runs.create_run(settings, session, body)
        download = runs.model_download(settings, session, body)
        session.commit()
        if download is not None and download.enqueued_at is None and jobs.send(settings, download):
            download.enqueued_at = download.updated_at
            session.commit()
    if download is None:  # else it is sent once its model is downloaded (send_pending)
        enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
    publish_run(run)
    return runs.to_public(run)


@router.post("/runs/preview", response_model=Preview)
def preview_run(body: RunCreate, settings: SettingsDep, session: SessionDep) -> Preview:
    config, warnings = runs.build_config(settings, body.preset, body.config, session)
    use_cpu = runs.cpu_only_queue(settings, session, config.launch.queue)
    cmd = runs.command_for(settings, "r-preview", config, use_cpu=use_cpu)
    est = estimates(session, config, settings.runs_dir, cpu_only=use_cpu)
    slow_samples = sampling_warning(est.evaluation)
    return Preview(
        **cmd,
        config=config.model_dump(mode="json"),
        estimates=est,
        warnings=[*warnings, slow_samples] if slow_samples else warnings,
    )


@router.get("/runs/{run_id}", response_model=RunPublic, responses=NOT_FOUND)
def get_run(run_id: str, session: SessionDep, settings: SettingsDep) -> RunPublic:
    run = runs.get_run(session, run_id)
    public = runs.to_public(
        run, has_checkpoint=run.id in runs_with_checkpoint(settings, session, [run.id])
    )
    public.waiting_reason = waiting.waiting_reason(settings, session, run)
    return public


@router.patch("/runs/{run_id}", response_model=RunPublic, responses=NOT_FOUND)
def update_run(run_id: str, body: RunUpdate, settings: SettingsDep) -> RunPublic:
    """Rename, tag or annotate a run (any status)."""
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        runs.update_run(run, body)
        session.commit()
    publish_run(run)
    return runs.to_public(run)


@router.delete(
    "/runs/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_run(run_id: str, settings: SettingsDep) -> Response:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        runs.delete_run(settings, session, run)
        session.commit()
    runs.remove_run_dir(settings, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/runs/{run_id}/cancel", response_model=RunPublic, responses={**NOT_FOUND, **CONFLICT})
def cancel_run(run_id: str, settings: SettingsDep) -> RunPublic:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        runs.cancel_run(run)
        session.commit()
    publish_run(run)
    return runs.to_public(run)


@router.post("/runs/{run_id}/resume", response_model=RunPublic, responses={**NOT_FOUND, **CONFLICT})
def resume_run(run_id: str, settings: SettingsDep, body: RunResume | None = None) -> RunPublic:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        runs.resume_run(session, run, (body or RunResume()).checkpoint)
        session.commit()
    enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
    publish_run(run)
    return runs.to_public(run)


@router.post(
    "/runs/{run_id}/clone",
    response_model=RunPublic,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
def clone_run(run_id: str, settings: SettingsDep, body: RunClone | None = None) -> RunPublic:
    with write_session(settings) as session:
        source = runs.get_run(session, run_id)
        run = runs.clone_run(settings, session, source, body or RunClone())
        session.commit()
    enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
    publish_run(run)
    return runs.to_public(run)


@router.get(
    "/runs/{run_id}/command", response_model=RunCommand, responses={**NOT_FOUND, **CONFLICT}
)
def run_command(run_id: str, session: SessionDep, settings: SettingsDep) -> RunCommand:
    run = runs.get_run(session, run_id)
    try:
        config = RunConfig.model_validate(run.config)
    except ValidationError as exc:  # stored under an older schema
        raise Conflict(f"run {run_id}'s stored config is no longer valid: {exc}") from None
    resume = run.resume_from if run.status in ACTIVE_STATUSES else None
    launched = [
        AttemptCommand(attempt=int(n), argv=argv, command=display_command(argv))
        for n, argv in sorted((run.attempt_argv or {}).items(), key=lambda kv: int(kv[0]))
    ]
    use_cpu = runs.cpu_only_queue(settings, session, config.launch.queue)
    cmd = runs.command_for(settings, run.id, config, resume, use_cpu=use_cpu)
    return RunCommand(**cmd, attempts=launched)
