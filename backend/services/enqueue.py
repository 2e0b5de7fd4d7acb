"""Ring the broker's doorbell: send ``worker.tasks.run_training(run_id, attempt)``.

The message carries no config: the worker claims the run through the API, so a duplicate or
stale message is harmless (the claim answers 409).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery

from backend.core.celery_config import MERGE_LORA_TASK, RUN_TRAINING_TASK, celery_config
from backend.core.config import Settings

log = logging.getLogger(__name__)

_apps: dict[str, Celery] = {}
_lock = threading.Lock()

#: Give up quickly when the broker is down; the recovery loop sends again later.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def celery_app(settings: Settings) -> Celery:
    key = f"{settings.celery_broker_url}|{settings.resolved_data_dir}"
    with _lock:
        app = _apps.get(key)
        if app is None:
            app = Celery("cpt-panel-api", set_as_current=False)
            app.conf.update(celery_config(settings))
            _apps[key] = app
        return app


def send_run(settings: Settings, run_id: str, attempt: int, queue: str) -> None:
    """Raises on a broker error (the caller leaves the run queued for a later resend)."""
    celery_app(settings).send_task(
        RUN_TRAINING_TASK,
        args=(run_id, attempt),
        queue=queue,
        retry=True,
        retry_policy=_RETRY_POLICY,
    )


def send_merge(settings: Settings, queue: str, kwargs: dict[str, Any]) -> None:
    celery_app(settings).send_task(
        MERGE_LORA_TASK, kwargs=kwargs, queue=queue, retry=True, retry_policy=_RETRY_POLICY
    )
