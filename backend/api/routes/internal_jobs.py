"""The worker side of jobs (``/api/internal/jobs``, worker token): claim, status, log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status

from backend.api.deps import SettingsDep, client_address, require_worker_token
from backend.api.routes.common import AUTH, CONFLICT, FORBIDDEN, NOT_FOUND
from backend.core.db import write_session
from backend.core.security import job_lease_for, job_lease_matches
from backend.services import (
    audit,
    benchmarks,
    enqueue,
    hub_models,
    hub_token,
    job_stream,
    jobs,
    model_card,
)
from cpt_contract.protocol import (
    LEASE_HEADER,
    CancelAnswer,
    JobClaimIn,
    JobClaimOut,
    JobLogIn,
    JobLogOut,
    JobStatusIn,
)
from cpt_contract.statuses import RunStatus

router = APIRouter(
    prefix="/internal",
    tags=["internal"],
    dependencies=[Depends(require_worker_token)],
    responses={**AUTH, **NOT_FOUND},
)
Lease = Annotated[
    str | None,
    Header(alias=LEASE_HEADER, max_length=128, description="The lease the claim answered"),
]


def _check_lease(settings: SettingsDep, job_id: str, lease: str | None, attempt: int) -> None:
    """Only the worker that claimed a job's current attempt reports on it (and so sets what
    gets downloaded): a lost worker that comes back after the job was tried again is refused."""
    if not job_lease_matches(settings, job_id, lease, attempt):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"no valid {LEASE_HEADER} for job {job_id}: only the worker that claimed it may "
            "report on it",
        )


@router.post("/jobs/{job_id}/claim", response_model=JobClaimOut, responses=CONFLICT)
def claim_job(
    job_id: str, body: JobClaimIn, settings: SettingsDep, request: Request
) -> JobClaimOut:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        jobs.claim(job, body.worker)
        audit.append(
            session,
            actor=body.worker,
            via="worker",
            client=client_address(request),
            action="job.claim",
            target=f"job/{job_id}",
            changes={"attempt": job.attempt},
        )
        session.commit()
        job_stream.push(session, job)
        return JobClaimOut(
            kind=job.kind,
            params=job.params,
            job_dir=str(jobs.paths(settings, job.id).job_dir),
            lease=job_lease_for(settings, job.id, job.attempt),
            attempt=job.attempt,
            hub_token=hub_token.for_job(settings, session, job.kind),
            files=model_card.files_for(session, job),
        )


@router.post(
    "/jobs/{job_id}/status", response_model=CancelAnswer, responses={**CONFLICT, **FORBIDDEN}
)
def report_job(
    job_id: str, body: JobStatusIn, settings: SettingsDep, request: Request, lease: Lease = None
) -> CancelAnswer:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        _check_lease(settings, job.id, lease, job.attempt)
        was = job.status
        jobs.report(job, RunStatus(body.status), body.reason, body.result)
        if job.status != was:
            audit.append(
                session,
                actor=job.worker or "worker",
                via="worker",
                client=client_address(request),
                action="job.status",
                target=f"job/{job_id}",
                changes={"status": job.status, "attempt": job.attempt},
            )
        hub_models.after_download(settings, session, job)
        benchmarks.after_job(session, job)
        session.commit()
        job_stream.push(session, job)
        answer = CancelAnswer(cancel_requested=jobs.cancel_requested(job))
    if job.kind == "download" and job.status == RunStatus.succeeded:
        enqueue.send_pending(settings)  # the runs that waited for this model start now
    return answer


@router.post("/jobs/{job_id}/log", response_model=JobLogOut, responses=FORBIDDEN)
def ship_job_log(
    job_id: str, body: JobLogIn, settings: SettingsDep, lease: Lease = None
) -> JobLogOut:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        _check_lease(settings, job.id, lease, job.attempt)
        until = jobs.store_log(session, job, body.offset, body.text)
        session.commit()
        job_stream.push(session, job)
        return JobLogOut(accepted_until=until, cancel_requested=jobs.cancel_requested(job))
