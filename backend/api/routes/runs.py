"""Runs: list, create, preview, show, delete, cancel, resume, clone, command."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ValidationError

from backend.api.deps import CurrentUser, SessionDep, SettingsDep, Viewer, require_api_token
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND, OVER_QUOTA
from backend.core.db import write_session
from backend.core.permissions import ensure_owner
from backend.models import RunClone, RunCreate, RunList, RunPublic, RunResume, RunUpdate
from backend.services import audit, enqueue, jobs, runs, users, waiting
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


@router.post(
    "/runs", response_model=RunPublic, status_code=status.HTTP_201_CREATED, responses=OVER_QUOTA
)
def create_run(me: CurrentUser, body: RunCreate, settings: SettingsDep) -> RunPublic:
    with write_session(settings) as session:
        users.check_quota(session, me.name)
        run = runs.create_run(settings, session, body)
        run.owner = me.name
        download = runs.model_download(settings, session, body)
        fields = {"name": run.name, "preset": body.preset, "queue": run.queue, "model": run.model}
        audit.record(session, me, "run.create", f"run/{run.id}", fields)
        session.commit()
        public = runs.to_public(run)  # in its session: has_checkpoint reads it
        if download is not None and download.enqueued_at is None and jobs.send(settings, download):
            download.enqueued_at = download.updated_at
            session.commit()
    if download is None:  # else it is sent once its model is downloaded (send_pending)
        enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
    publish_run(run)
    return public


@router.post("/runs/preview", response_model=Preview)
def preview_run(
    _me: Viewer, body: RunCreate, settings: SettingsDep, session: SessionDep
) -> Preview:
    """What a launch would run (nothing is stored: a viewer may ask)."""
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
def update_run(me: CurrentUser, run_id: str, body: RunUpdate, settings: SettingsDep) -> RunPublic:
    """Rename, tag or annotate a run (any status)."""
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ensure_owner(me, run.owner, f"run {run_id}")
        before = {k: getattr(run, k) for k in body.model_fields_set}
        runs.update_run(run, body)
        changed = {
            k: {"from": v, "to": getattr(run, k)} for k, v in before.items() if v != getattr(run, k)
        }
        audit.record(session, me, "run.edit", f"run/{run_id}", changed)
        session.commit()
        public = runs.to_public(run)  # in its session: has_checkpoint reads it
    publish_run(run)
    return public


@router.delete(
    "/runs/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_run(me: CurrentUser, run_id: str, settings: SettingsDep) -> Response:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ensure_owner(me, run.owner, f"run {run_id}")
        runs.delete_run(settings, session, run)
        audit.record(session, me, "run.delete", f"run/{run_id}", {"name": run.name})
        session.commit()
    runs.remove_run_dir(settings, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/runs/{run_id}/cancel", response_model=RunPublic, responses={**NOT_FOUND, **CONFLICT})
def cancel_run(me: CurrentUser, run_id: str, settings: SettingsDep) -> RunPublic:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ensure_owner(me, run.owner, f"run {run_id}")
        was = run.status
        runs.cancel_run(run)
        audit.record(session, me, "run.cancel", f"run/{run_id}", {"status": {"from": was}})
        session.commit()
        public = runs.to_public(run)  # in its session: has_checkpoint reads it
    publish_run(run)
    return public


@router.post(
    "/runs/{run_id}/resume",
    response_model=RunPublic,
    responses={**NOT_FOUND, **CONFLICT, **OVER_QUOTA},
)
def resume_run(
    me: CurrentUser, run_id: str, settings: SettingsDep, body: RunResume | None = None
) -> RunPublic:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ensure_owner(me, run.owner, f"run {run_id}")
        users.check_quota(session, run.owner)
        checkpoint = (body or RunResume()).checkpoint
        runs.resume_run(session, run, checkpoint)
        audit.record(
            session,
            me,
            "run.resume",
            f"run/{run_id}",
            {"checkpoint": checkpoint, "attempt": run.attempt},
        )
        session.commit()
        public = runs.to_public(run)  # in its session: has_checkpoint reads it
    enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
    publish_run(run)
    return public


@router.post(
    "/runs/{run_id}/clone",
    response_model=RunPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **OVER_QUOTA},
)
def clone_run(
    me: CurrentUser, run_id: str, settings: SettingsDep, body: RunClone | None = None
) -> RunPublic:
    """A new run (the caller's) from another's config: anyone who may launch may clone."""
    with write_session(settings) as session:
        users.check_quota(session, me.name)
        source = runs.get_run(session, run_id)
        run = runs.clone_run(settings, session, source, body or RunClone())
        run.owner = me.name
        audit.record(session, me, "run.clone", f"run/{run.id}", {"from": run_id, "name": run.name})
        session.commit()
        public = runs.to_public(run)  # in its session: has_checkpoint reads it
    enqueue.enqueue_run(settings, run.id, run.attempt, run.queue)
    publish_run(run)
    return public


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
