"""Celery tasks of the worker. Thin: a run's lifecycle lives in ``worker.attempt.runner``, a job's
(merge, tokenizer, scan) in ``worker.agent.jobs``."""

from __future__ import annotations

from cpt_contract.broker import RUN_TRAINING_TASK
from cpt_contract.jobs import RUN_JOB_TASK
from cpt_contract.settings import get_settings
from worker.agent.celery_app import app
from worker.agent.jobs import run_job as _run_job
from worker.attempt.runner import run_attempt


@app.task(name=RUN_TRAINING_TASK)
def run_training(run_id: str, attempt: int) -> str | None:
    outcome = run_attempt(get_settings(), run_id, int(attempt))
    return None if outcome is None else outcome.status


@app.task(name=RUN_JOB_TASK)
def run_job(job_id: str) -> str | None:
    return _run_job(get_settings(), str(job_id))
