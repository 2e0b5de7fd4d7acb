"""Jobs (``/api/jobs``): merges, tokenizer extensions and dataset scans, queued on a box's job slot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel

from backend.api.deps import CurrentUser, SessionDep, SettingsDep, require_api_token
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND
from backend.core.db import write_session
from backend.core.permissions import ensure_owner
from backend.models import JobCreate, JobDetail, JobPublic
from backend.services import audit, job_stream, jobs
from cpt_contract.jobs import JOB_PARAMS, JobKind

router = APIRouter(tags=["jobs"], dependencies=[Depends(require_api_token)], responses=AUTH)


class JobLog(BaseModel):
    text: str
    next: int
    size: int


@router.get("/jobs", response_model=list[JobPublic])
def list_jobs(
    session: SessionDep,
    kind: Annotated[JobKind | None, Query()] = None,
    run_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JobPublic]:
    return [jobs.public(j) for j in jobs.list_jobs(session, kind, run_id, limit)]


@router.get("/schema/jobs")
def job_schemas() -> dict[str, object]:
    """Each kind's parameters as JSON Schema (the forms are generated from it)."""
    return {kind: model.model_json_schema() for kind, model in JOB_PARAMS.items()}


@router.post(
    "/jobs",
    response_model=JobDetail,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, **CONFLICT},
)
def create_job(me: CurrentUser, body: JobCreate, settings: SettingsDep) -> JobDetail:
    with write_session(settings) as session:
        job = jobs.create_job(settings, session, body)
        job.owner = me.name
        fields = {"kind": job.kind, "queue": job.queue, "run_id": job.run_id, "params": job.params}
        audit.record(session, me, "job.create", f"job/{job.id}", fields)
        session.commit()
        if jobs.send(settings, job):
            job.enqueued_at = job.updated_at
            session.commit()
        return JobDetail(
            **jobs.public(job).model_dump(), queue_position=jobs.queue_position(session, job)
        )


@router.get("/jobs/{job_id}", response_model=JobDetail, responses=NOT_FOUND)
def get_job(job_id: str, session: SessionDep) -> JobDetail:
    return job_stream.detail(session, jobs.get_job(session, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, responses={**NOT_FOUND, **CONFLICT})
def cancel_job(me: CurrentUser, job_id: str, settings: SettingsDep) -> JobPublic:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        ensure_owner(me, job.owner, f"job {job_id}")
        was = job.status
        job = jobs.cancel(job)
        audit.record(session, me, "job.cancel", f"job/{job_id}", {"status": {"from": was}})
        session.commit()
        job_stream.push(session, job)
        return jobs.public(job)


@router.get("/jobs/{job_id}/log", response_model=JobLog, responses=NOT_FOUND)
def job_log(
    job_id: str,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**40)] = 0,
) -> JobLog:
    job = jobs.get_job(session, job_id)
    text = jobs.read_log(session, job_id, after)
    return JobLog(text=text, next=after + len(text.encode("utf-8")), size=job.log_size)
