"""The Celery configuration shared by the API (which sends) and the worker (which consumes).

One function so both sides agree on the broker: Redis via ``CPT_BROKER_URL``, or the embedded
filesystem broker in the data dir. No result backend: run state lives in the database.
"""

from __future__ import annotations

from typing import Any

from cpt_contract.settings import Settings

#: Task names (strings, so the API never imports the worker's torch-heavy modules).
RUN_TRAINING_TASK = "worker.tasks.run_training"


def jobs_queue(queue: str) -> str:
    """The queue of a box's job slot: merges, tokenizer and scan jobs never wait behind training."""
    return f"{queue}.jobs"


def celery_config(settings: Settings) -> dict[str, Any]:
    url = settings.celery_broker_url
    conf: dict[str, Any] = {
        "broker_url": url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
    }
    if url.startswith("filesystem"):
        broker_dir = settings.resolved_data_dir / "broker"
        queue_dir, processed_dir = broker_dir / "queue", broker_dir / "processed"
        queue_dir.mkdir(parents=True, exist_ok=True)
        processed_dir.mkdir(parents=True, exist_ok=True)
        # kombu's own filesystem transport can hand out a half-written message: see fs_broker.
        conf["broker_transport"] = "cpt_contract.fs_broker:Transport"
        conf["broker_transport_options"] = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(processed_dir),
            "store_processed": False,
            # Each consumer (the run worker and its job slot) polls the folder: every 50 ms was
            # ~0.5 % of a core each while idle; 0.2 s adds ~0.1 s to a launch that takes 15+ s.
            "polling_interval": 0.2,
            # kombu's default is ./control in the current directory; keep everything in the data dir.
            "control_folder": str(broker_dir / "control"),
        }
    return conf
