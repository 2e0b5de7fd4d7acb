"""A run whose base model is a Hub id: it waits for the model's download job, then starts.

At submit (``runs.validate_config``) a ``model_name_or_path`` that is a Hub id (``hf:org/name``;
a bare ``org/name`` is a relative path and refused as one) becomes the directory its download
lands in (``<data dir>/models/org--name``,
``cpt_contract.jobs.download_dir_name``). If that directory is not there yet, ``create_run``
starts a download job for it (or joins one already under way) and the run stays ``queued``
without a Celery message: ``waiting_for`` finds the active download that targets the run's model
directory, ``enqueue.send_pending`` skips such runs, and ``waiting.waiting_reason`` says
"waiting for download of org/name (43 %)" from the job's measured progress. When the download
succeeds the run is sent like any queued run; when it fails or is cancelled, the runs waiting for
it fail with its reason (``after_download``). Nothing is stored on the run: the model directory
and the job's parameters say it all.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from backend.models import Job, Run
from backend.services import job_progress, state_machine
from cpt_contract.jobs import DownloadParams, download_dir_name, hub_id_of
from cpt_contract.settings import Settings
from cpt_contract.statuses import ACTIVE_STATUSES, RunStatus


def hub_target(settings: Settings, value: str | None, revision: str) -> Path | None:
    """Where a Hub id's (``hf:org/name``) download lands (None: the value is no Hub id)."""
    repo = hub_id_of(value)
    return None if repo is None else settings.models_dir / download_dir_name(repo, revision)


def _target_of(settings: Settings, job: Job) -> Path | None:
    try:
        params = DownloadParams.model_validate(job.params)
    except ValueError:
        return None
    if params.repo_type != "model":
        return None
    return settings.models_dir / params.dir_name()


def _model_dir(run: Run) -> str | None:
    value = ((run.config or {}).get("model") or {}).get("model_name_or_path")
    return value if isinstance(value, str) else None


def active_downloads(session: Session) -> list[Job]:
    return list(
        session.exec(
            select(Job).where(
                Job.kind == "download",
                col(Job.status).in_([s.value for s in ACTIVE_STATUSES]),
            )
        )
    )


def waiting_for(settings: Settings, session: Session, run: Run) -> Job | None:
    """The active download job that will bring this queued run's model, if any."""
    model = _model_dir(run)
    if run.status != RunStatus.queued or not model or Path(model).exists():
        return None
    for job in active_downloads(session):
        if str(_target_of(settings, job)) == model:
            return job
    return None


def start_download(settings: Settings, session: Session, repo_id: str, revision: str) -> Job:
    """The active download of this repo and revision, or a new one (not yet sent)."""
    target = settings.models_dir / download_dir_name(repo_id, revision)
    for job in active_downloads(session):
        if _target_of(settings, job) == target:
            return job
    from backend.models import JobCreate
    from backend.services import jobs

    body = JobCreate(kind="download", params={"repo_id": repo_id, "revision": revision})
    job = jobs.create_job(settings, session, body)
    session.flush()
    return job


def reason(settings: Settings, session: Session, job: Job) -> str:
    repo = f"{job.params.get('repo_id')}"
    progress = job_progress.last_progress(session, job)
    if progress and progress.total_bytes:
        pct = int(100 * (progress.bytes or 0) / progress.total_bytes)
        return f"waiting for download of {repo} ({pct} %)"
    return f"waiting for download of {repo} (job {job.id}, {job.status})"


def after_download(settings: Settings, session: Session, job: Job) -> list[str]:
    """A download that ended without success fails the runs that waited for it."""
    if job.kind != "download" or job.status == RunStatus.succeeded:
        return []
    if job.status not in (RunStatus.failed, RunStatus.cancelled):
        return []
    target = _target_of(settings, job)
    if target is None or target.exists():
        return []
    failed = []
    for run in session.exec(select(Run).where(Run.status == RunStatus.queued)):
        if _model_dir(run) == str(target):
            why = f"model download {job.id} {job.status}: {job.status_reason or 'no reason'}"
            state_machine.transition(run, RunStatus.failed, why[:2000])
            failed.append(run.id)
    return failed
