"""The worker's Celery app, configured from settings by the one shared broker config.

The API enqueues with the same ``celery_config(settings)``, so both sides always agree on the
broker (Redis, or the embedded filesystem broker under the data dir) and the queue.
"""

from __future__ import annotations

from celery import Celery

from cpt_contract.broker import celery_config
from cpt_contract.settings import Settings, get_settings


def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("cpt_worker")
    app.conf.update(celery_config(settings))
    app.conf.update(
        # Recovery is app-level (claim + heartbeats), so the message is acked when received.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_pool="prefork",
        task_default_queue=settings.queue,
        # A run can take days: never let Celery time it out or hijack the root logger.
        task_time_limit=None,
        task_soft_time_limit=None,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_ignore_result=True,
    )
    app.conf.include = ["worker.agent.tasks"]
    return app


app = make_app()
