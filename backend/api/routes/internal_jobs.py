"""The worker side of jobs (``/api/internal/jobs``, worker token): claim, status, log."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.api.deps import SettingsDep, require_worker_token
from backend.api.routes.common import AUTH, CONFLICT, NOT_FOUND
from backend.core.db import write_session
from backend.services import jobs
from cpt_contract.protocol import (
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


@router.post("/jobs/{job_id}/claim", response_model=JobClaimOut, responses=CONFLICT)
def claim_job(job_id: str, body: JobClaimIn, settings: SettingsDep) -> JobClaimOut:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        jobs.claim(job, body.worker)
        session.commit()
        return JobClaimOut(
            kind=job.kind, params=job.params, job_dir=str(jobs.paths(settings, job.id).job_dir)
        )


@router.post("/jobs/{job_id}/status", response_model=CancelAnswer, responses=CONFLICT)
def report_job(job_id: str, body: JobStatusIn, settings: SettingsDep) -> CancelAnswer:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        jobs.report(job, RunStatus(body.status), body.reason, body.result)
        session.commit()
        return CancelAnswer(cancel_requested=jobs.cancel_requested(job))


@router.post("/jobs/{job_id}/log", response_model=JobLogOut)
def ship_job_log(job_id: str, body: JobLogIn, settings: SettingsDep) -> JobLogOut:
    with write_session(settings) as session:
        job = jobs.get_job(session, job_id, for_update=True)
        until = jobs.store_log(session, job, body.offset, body.text)
        session.commit()
        return JobLogOut(accepted_until=until, cancel_requested=jobs.cancel_requested(job))
