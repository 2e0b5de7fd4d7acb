"""A job as its page shows it, and the push of that view to the job's stream.

The view is built in one place so the page's first read (``GET /jobs/{id}``) and every pushed
update (``GET /jobs/{id}/stream``) say the same thing. A push happens after the worker's report,
log chunk or claim is committed, and only while someone listens: a download's progress then
reaches the page as soon as the tool's ``progress`` line is stored, with no second channel.
"""

from __future__ import annotations

from sqlmodel import Session

from backend.models import Job, JobDetail
from backend.services import job_progress, jobs
from backend.services.bus import bus, job_topic


def detail(session: Session, job: Job) -> JobDetail:
    return JobDetail(
        **jobs.public(job).model_dump(),
        queue_position=jobs.queue_position(session, job),
        progress=job_progress.last_progress(session, job),
    )


def push(session: Session, job: Job) -> None:
    """Send the job's current view to its listeners (after the change is committed)."""
    topic = job_topic(job.id)
    if bus.has_subscribers(topic):
        bus.publish(topic, "job", detail(session, job).model_dump(mode="json"))
