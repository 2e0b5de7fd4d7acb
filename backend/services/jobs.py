"""Jobs (merge, tokenizer, scan, generate, clean): create with validated parameters, claim, report, log, cancel.

Like runs, the database is the truth and the broker only the doorbell: a worker claims a queued
job (``queued → running``), so a repeated message is harmless; a lost one is resent by the
recovery loop. A job has no attempts: interrupted, it fails with the reason and can be run again.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from backend.models import Checkpoint, Job, JobCreate, JobLogChunk, JobPublic, Run, utcnow
from backend.services import clean, enqueue
from backend.services.errors import Conflict, NotFound
from backend.services.paths import PathNotAllowed, escaping_entry, is_under, resolve_allowed
from backend.services.validation import ConfigInvalid, check_size, config_errors, error
from cpt_contract.jobs import CHECKPOINT_KINDS, JOB_PARAMS, PATH_PARAMS, RETRIED_KINDS
from cpt_contract.run_paths import JobPaths
from cpt_contract.settings import Settings
from cpt_contract.statuses import ACTIVE_STATUSES, TERMINAL_STATUSES, RunStatus

log = logging.getLogger(__name__)


def _validate_paths(settings: Settings, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    errors = []
    for name in PATH_PARAMS[kind]:
        value = params.get(name)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        resolved = []
        for i, raw in enumerate(items):
            loc: list[str | int] = [
                "body",
                "params",
                name,
                *([i] if isinstance(value, list) else []),
            ]
            try:
                path = resolve_allowed(raw, settings.roots)
            except PathNotAllowed as exc:
                errors.append(error(loc, str(exc), "path_not_allowed"))
                continue
            if not path.exists():
                errors.append(error(loc, f"'{raw}' does not exist", "path_missing"))
                continue
            if problem := escaping_entry(path, settings.roots):
                errors.append(error(loc, problem, "path_escapes_roots"))
                continue
            resolved.append(str(path))
        params[name] = resolved if isinstance(value, list) else (resolved[0] if resolved else None)
    if errors:
        raise ConfigInvalid(errors)
    return params


#: Jobs that ship a whole model: of a LoRA run, that is the checkpoint's merge.
SHIPPED_FROM_A_MERGE = ("export", "publish")


def _require_merge(session: Session, run: Run, checkpoint: str, kind: str) -> None:
    """A LoRA checkpoint is exported or published from its merge: refuse up front (409) rather
    than queue a job that can only fail."""
    merges = session.exec(
        select(Job).where(
            Job.run_id == run.id, Job.kind == "merge", Job.status == RunStatus.succeeded
        )
    ).all()
    if not any(m.params.get("checkpoint") == checkpoint for m in merges):
        raise Conflict(
            f"run {run.id} is LoRA: {kind} ships the merged model of {checkpoint}, and it has "
            "none yet: merge it first (Checkpoints → Merge & export)"
        )


def validate(
    settings: Settings, session: Session, body: JobCreate
) -> tuple[dict[str, Any], Run | None]:
    model = JOB_PARAMS.get(body.kind)
    if model is None:
        raise ConfigInvalid(
            [
                error(
                    ["body", "kind"], f"unknown job kind {body.kind!r}: one of {sorted(JOB_PARAMS)}"
                )
            ]
        )
    check_size(body.params, ["body", "params"], "params")
    try:
        params = model.model_validate(body.params).model_dump()
    except ValidationError as exc:
        raise ConfigInvalid(config_errors(exc, ["body", "params"])) from None
    run = None
    if body.kind in CHECKPOINT_KINDS:
        run = session.get(Run, params["run_id"])
        if run is None:
            raise NotFound(f"run {params['run_id']} not found")
        if body.kind == "merge" and run.method != "lora":
            raise Conflict(f"run {run.id} trained all weights: its checkpoints are full models")
        found = session.exec(
            select(Checkpoint).where(
                Checkpoint.run_id == run.id, Checkpoint.name == params["checkpoint"]
            )
        ).first()
        if found is None:
            raise NotFound(f"run {run.id} has no checkpoint {params['checkpoint']}")
        if not Path(found.path).is_dir():
            raise Conflict(f"{params['checkpoint']} of run {run.id} was deleted (keep limit)")
        if body.kind in SHIPPED_FROM_A_MERGE and run.method == "lora":
            _require_merge(session, run, params["checkpoint"], body.kind)
    params = _validate_paths(settings, body.kind, params)
    if body.kind == "clean":
        params = clean.validate(settings, params)
    return params, run


def create_job(settings: Settings, session: Session, body: JobCreate) -> Job:
    params, run = validate(settings, session, body)
    queue = body.queue or (run.queue if run is not None else settings.queue)
    job = Job(
        id="j-" + secrets.token_hex(4),
        kind=body.kind,
        params=params,
        queue=queue,
        run_id=run.id if run is not None else None,
    )
    session.add(job)
    return job


def public(job: Job, now: datetime | None = None) -> JobPublic:
    out = JobPublic.model_validate(job, from_attributes=True)
    if out.started_at is not None:
        end = out.finished_at or (now or utcnow())
        out.duration_seconds = max(0.0, (end - out.started_at).total_seconds())
    return out


def get_job(session: Session, job_id: str, *, for_update: bool = False) -> Job:
    stmt = select(Job).where(Job.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    job = session.exec(stmt).first()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def list_jobs(session: Session, kind: str | None, run_id: str | None, limit: int) -> list[Job]:
    stmt = select(Job)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    if run_id:
        stmt = stmt.where(Job.run_id == run_id)
    return list(session.exec(stmt.order_by(col(Job.created_at).desc()).limit(limit)))


def _retry(job: Job, reason: str) -> None:
    """Back to the queue as its next attempt; the recovery loop sends its message."""
    job.attempt += 1
    job.status, job.status_reason, job.updated_at = RunStatus.queued, reason, utcnow()
    job.worker = job.started_at = job.enqueued_at = job.last_seen_at = None


def _finish(job: Job, status: RunStatus, reason: str | None) -> None:
    now = utcnow()
    job.status, job.status_reason, job.finished_at, job.updated_at = status, reason, now, now


def cancel(job: Job) -> Job:
    if job.status in TERMINAL_STATUSES:
        raise Conflict(f"job {job.id} is already {job.status}")
    if job.status == RunStatus.queued:
        _finish(job, RunStatus.cancelled, "cancelled before it started")
    else:
        job.status, job.updated_at = RunStatus.cancelling, utcnow()
    return job


def cancel_requested(job: Job) -> bool:
    return job.status in (RunStatus.cancelling, RunStatus.cancelled)


def claim(job: Job, worker: str) -> None:
    if job.status != RunStatus.queued:
        raise Conflict(f"job {job.id} is {job.status}, not queued")
    now = utcnow()
    job.status, job.worker, job.started_at, job.last_seen_at, job.updated_at = (
        RunStatus.running,
        worker,
        now,
        now,
        now,
    )
    job.status_reason = f"running on {worker}"


def report(job: Job, status: RunStatus, reason: str | None, result: dict[str, Any] | None) -> None:
    job.last_seen_at = utcnow()
    if job.status in TERMINAL_STATUSES:
        if job.status != status:
            raise Conflict(f"job {job.id} is already {job.status}")
        return  # a repeated final report
    if status == RunStatus.running:
        return
    if job.status == RunStatus.cancelling and status == RunStatus.succeeded:
        status = RunStatus.succeeded  # it finished before the cancel reached it: keep the result
    job.result = result if status == RunStatus.succeeded else job.result
    _finish(job, status, reason)


def store_log(session: Session, job: Job, offset: int, text: str) -> int:
    """Append at ``offset`` (idempotent: a resent chunk is acknowledged, never stored twice)."""
    job.last_seen_at = utcnow()
    size = len(text.encode("utf-8"))
    if offset == job.log_size and text:
        session.add(JobLogChunk(job_id=job.id, offset=offset, text=text))
        job.log_size += size
    return job.log_size


def read_log(session: Session, job_id: str, after: int, limit_bytes: int = 1 << 20) -> str:
    chunks = session.exec(
        select(JobLogChunk)
        .where(JobLogChunk.job_id == job_id, JobLogChunk.offset >= after)
        .order_by(col(JobLogChunk.offset))
    )
    out, total = [], 0
    for chunk in chunks:
        out.append(chunk.text)
        total += len(chunk.text)
        if total >= limit_bytes:
            break
    return "".join(out)


def paths(settings: Settings, job_id: str) -> JobPaths:
    return JobPaths.of(settings.jobs_dir, job_id)


def queue_position(session: Session, job: Job) -> int | None:
    if job.status != RunStatus.queued:
        return None
    ahead = session.exec(
        select(func.count())
        .select_from(Job)
        .where(
            Job.queue == job.queue, Job.status == RunStatus.queued, Job.created_at < job.created_at
        )
    ).one()
    return int(ahead) + 1


def send(settings: Settings, job: Job) -> bool:
    try:
        enqueue.send_job(settings, job.id, job.queue)
    except Exception as exc:  # broker down: the recovery loop sends it again
        log.warning("could not enqueue job %s: %s", job.id, exc)
        return False
    return True


def recover(settings: Settings, session: Session, lost_after: float) -> list[str]:
    """Fail jobs whose worker went silent; resend queued jobs whose message may be lost."""
    now = utcnow()
    changed = []
    for job in session.exec(select(Job).where(col(Job.status).in_(list(ACTIVE_STATUSES)))):
        seen = job.last_seen_at
        if seen is not None and seen.tzinfo is None:
            seen = seen.replace(tzinfo=now.tzinfo)
        if job.status in (RunStatus.running, RunStatus.cancelling):
            if seen is not None and now - seen > timedelta(seconds=lost_after):
                silent = (now - seen).total_seconds()
                lost = f"worker lost: no word from {job.worker} for {silent:.0f} s"
                if (
                    job.status == RunStatus.running
                    and job.kind in RETRIED_KINDS
                    and job.attempt == 1
                ):
                    _retry(
                        job,
                        f"{lost}; tried again as attempt 2 (the same job gives the same result)",
                    )
                else:
                    _finish(job, RunStatus.failed, lost)
                changed.append(job.id)
        elif job.status == RunStatus.queued:
            sent = job.enqueued_at
            if sent is not None and sent.tzinfo is None:
                sent = sent.replace(tzinfo=now.tzinfo)
            stale = sent is None or now - sent > timedelta(seconds=max(30.0, lost_after))
            if stale and send(settings, job):
                job.enqueued_at = now
    return changed


def output_dir(settings: Settings, job: Job) -> Path | None:
    """The directory a succeeded job wrote, only when it lies inside the panel's own dirs."""
    raw = (job.result or {}).get("output") if job.status == RunStatus.succeeded else None
    if not isinstance(raw, str):
        return None
    path = Path(raw).resolve()
    # Only where this job writes: its own job dir, or (a merge) its run's merged/ dir.
    own = [settings.jobs_dir.resolve() / job.id]
    run_id = (job.params or {}).get("run_id")
    if job.kind == "merge" and isinstance(run_id, str) and re.fullmatch(r"r-[0-9a-f]+", run_id):
        own.append((settings.runs_dir / run_id / "merged").resolve())
    inside = any(is_under(path, root) and path != root for root in own)
    return path if inside and path.is_dir() else None
