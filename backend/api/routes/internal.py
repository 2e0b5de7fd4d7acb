"""The worker protocol (``/api/internal``, worker token): heartbeat, claim, status, events, logs.

Every answer about a run says whether its cancel was requested, so a worker learns it on the
next shipment at the latest.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status

from backend.api.deps import SettingsDep, client_address, require_worker_token
from backend.api.json_route import OrjsonRoute
from backend.api.routes.common import AUTH, CONFLICT, FORBIDDEN, NOT_FOUND
from backend.core.db import write_session
from backend.core.security import lease_for, lease_matches
from backend.models import Run
from backend.services import audit, ingest, runs, trackers
from backend.services.experiments import halving
from backend.services.notify import publish_events, publish_log, publish_run
from cpt_contract.protocol import (
    HEARTBEAT,
    LEASE_HEADER,
    AdoptIn,
    AdoptOut,
    CancelAnswer,
    ClaimIn,
    ClaimOut,
    EventsIn,
    EventsOut,
    HeartbeatIn,
    HeartbeatOut,
    LogsIn,
    LogsOut,
    StatusIn,
)
from cpt_contract.statuses import WORKER_STATUSES, RunStatus

Lease = Annotated[
    str | None,
    Header(alias=LEASE_HEADER, max_length=128, description="The lease the claim answered"),
]


def _check_lease(settings: SettingsDep, run: Run, attempt: int, lease: str | None) -> None:
    """Only the claimer of an attempt reports on it. The current attempt's claimer may also
    ship what earlier attempts left; an older attempt's claimer may still ship its own data
    (the answer tells it to stop)."""
    ok = lease_matches(settings, run.id, attempt, lease) or (
        attempt < run.attempt and lease_matches(settings, run.id, run.attempt, lease)
    )
    if not ok:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"no valid {LEASE_HEADER} for run {run.id} attempt {attempt}: only the worker that "
            "claimed this attempt may report on it",
        )


router = APIRouter(
    prefix="/internal",
    tags=["internal"],
    dependencies=[Depends(require_worker_token)],
    responses={**AUTH},
    route_class=OrjsonRoute,
)


@router.post(HEARTBEAT, response_model=HeartbeatOut)
def heartbeat(body: HeartbeatIn, settings: SettingsDep) -> HeartbeatOut:
    with write_session(settings) as session:
        cancel = ingest.heartbeat(session, body.model_dump())
        session.commit()
    return HeartbeatOut(cancel=cancel)


@router.post("/runs/{run_id}/claim", response_model=ClaimOut, responses={**NOT_FOUND, **CONFLICT})
def claim(run_id: str, body: ClaimIn, settings: SettingsDep, request: Request) -> ClaimOut:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ingest.claim(run, body.attempt, body.worker, body.instance)
        audit.append(
            session,
            actor=body.worker,
            via="worker",
            client=client_address(request),
            action="run.claim",
            target=f"run/{run_id}",
            changes={"attempt": body.attempt},
        )
        session.commit()
        report_to = (run.config.get("training") or {}).get("report_to") or []
        tracker_env = trackers.env_for(settings, session, list(report_to), run.id)
    publish_run(run)
    return ClaimOut(
        config=run.config,
        attempt=run.attempt,
        resume_from=run.resume_from,
        run_dir=str(runs.run_dir(settings, run.id)),
        output_dir=run.output_dir,
        lease=lease_for(settings, run.id, run.attempt),
        tracker_env=tracker_env,
    )


@router.post("/runs/{run_id}/adopt", response_model=AdoptOut, responses={**NOT_FOUND, **CONFLICT})
def adopt(run_id: str, body: AdoptIn, settings: SettingsDep) -> AdoptOut:
    """A worker restarted under the same name re-takes its current attempt (a Slurm job that
    outlived it) with a new lease; 409 when the attempt is superseded (the worker cancels the
    job), 403 when another worker holds the run (it leaves the job alone)."""
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        current = run.attempt == body.attempt and run.status in WORKER_STATUSES
        if current and run.worker != body.worker:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"run {run.id} is held by {run.worker}, not {body.worker}: leave its job alone",
            )
        ingest.adopt(run, body.attempt, body.instance, body.job)
        seq = ingest.events_seq(session, run.id)
        log_bytes = ingest.log_end(session, run.id, run.attempt)
        session.commit()
    publish_run(run)
    return AdoptOut(
        config=run.config,
        attempt=run.attempt,
        resume_from=run.resume_from,
        run_dir=str(runs.run_dir(settings, run.id)),
        output_dir=run.output_dir,
        lease=lease_for(settings, run.id, run.attempt),
        events_seq=seq,
        log_bytes=log_bytes,
    )


@router.post(
    "/runs/{run_id}/status",
    response_model=CancelAnswer,
    responses={**NOT_FOUND, **CONFLICT, **FORBIDDEN},
)
def report_status(
    run_id: str, body: StatusIn, settings: SettingsDep, request: Request, lease: Lease = None
) -> CancelAnswer:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        ingest.check_attempt(run, body.attempt)
        _check_lease(settings, run, body.attempt, lease)
        changed = ingest.report_status(
            run,
            body.attempt,
            RunStatus(body.status),
            body.reason,
            body.pid,
            body.kind,
            body.argv,
            max_futile=settings.futile_attempts,
        )
        if changed:
            audit.append(
                session,
                actor=run.worker or "worker",
                via="worker",
                client=client_address(request),
                action="run.status",
                target=f"run/{run_id}",
                changes={"status": run.status, "attempt": body.attempt, "kind": body.kind},
            )
        session.commit()
    if changed:
        publish_run(run)
    return CancelAnswer(cancel_requested=ingest.cancel_requested(run, body.attempt))


@router.post(
    "/runs/{run_id}/events", response_model=EventsOut, responses={**NOT_FOUND, **FORBIDDEN}
)
def ship_events(
    run_id: str, body: EventsIn, settings: SettingsDep, lease: Lease = None
) -> EventsOut:
    until, chunk = None, None
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        _check_lease(settings, run, body.attempt, lease)
        fresh = ingest.store_events(session, run, body.attempt, body.events)
        if body.log is not None:
            # Log bytes riding along: one request and one transaction instead of two.
            until, chunk = ingest.store_log(
                session, run, body.attempt, body.log.offset, body.log.text
            )
        session.commit()
        stops = session.info.pop(halving.PENDING, None)
    if stops:
        # Runs this evaluation put out of an experiment's kept share (early stopping).
        for other in halving.stop_others(settings, stops):
            publish_run(other)
    publish_events(fresh)
    if chunk is not None:
        publish_log(chunk)
    if fresh:
        publish_run(run)
    return EventsOut(
        accepted=len(fresh),
        log_accepted_until=until,
        cancel_requested=ingest.cancel_requested(run, body.attempt),
    )


@router.post("/runs/{run_id}/logs", response_model=LogsOut, responses={**NOT_FOUND, **FORBIDDEN})
def ship_logs(run_id: str, body: LogsIn, settings: SettingsDep, lease: Lease = None) -> LogsOut:
    with write_session(settings) as session:
        run = runs.get_run(session, run_id, for_update=True)
        _check_lease(settings, run, body.attempt, lease)
        until, chunk = ingest.store_log(session, run, body.attempt, body.offset, body.text)
        session.commit()
    if chunk is not None:
        publish_log(chunk)
    return LogsOut(
        accepted_until=until, cancel_requested=ingest.cancel_requested(run, body.attempt)
    )
