"""A download job's live progress, read back from its own log.

The download tool prints ``progress {json}`` about twice a second (bytes, files, rate, ETA, all
measured by the tool); the job log is already shipped and stored, so the last such line is the
progress: no second channel, and nothing the tool did not measure is shown.
"""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from backend.models import DownloadProgress, Job, JobLogChunk

PREFIX = "progress "


def last_progress(session: Session, job: Job) -> DownloadProgress | None:
    if job.kind != "download":
        return None
    chunks = session.exec(
        select(JobLogChunk)
        .where(JobLogChunk.job_id == job.id)
        .order_by(col(JobLogChunk.offset).desc())
        .limit(4)
    ).all()
    for line in reversed("".join(c.text for c in reversed(chunks)).splitlines()):
        if line.startswith(PREFIX):
            try:
                data = json.loads(line[len(PREFIX) :])
            except ValueError:
                continue  # a line cut by the chunk window
            if isinstance(data, dict):
                try:
                    return DownloadProgress.model_validate(
                        {k: data.get(k) for k in DownloadProgress.model_fields}
                    )
                except ValueError:
                    continue  # not numbers: an older line may still be whole
    return None
