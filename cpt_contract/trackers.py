"""Experiment trackers a run may also report to (``training.report_to``): the HF Trainer's own
callbacks for MLflow, Weights & Biases, TensorBoard and Trackio. The panel's charts are fed by
its own events either way.

Each tracker's settings (tracking URI, project, entity, API keys) are the panel's, kept encrypted
in its secret store (``backend/services/trackers.py``) and handed to a run's ranks through the
environment only: the claim carries them (``ClaimOut.tracker_env``), the worker adds them to the
launched process's environment; never an argv, a log line or an API answer.
"""

from __future__ import annotations

from typing import Literal

Tracker = Literal["mlflow", "wandb", "tensorboard", "trackio"]
TRACKERS: tuple[str, ...] = ("mlflow", "wandb", "tensorboard", "trackio")

#: Per tracker, each setting's name → the environment variable its callback reads.
TRACKER_ENV: dict[str, dict[str, str]] = {
    "mlflow": {
        "tracking_uri": "MLFLOW_TRACKING_URI",
        "experiment": "MLFLOW_EXPERIMENT_NAME",
        "token": "MLFLOW_TRACKING_TOKEN",
        "username": "MLFLOW_TRACKING_USERNAME",
        "password": "MLFLOW_TRACKING_PASSWORD",
    },
    "wandb": {
        "project": "WANDB_PROJECT",
        "entity": "WANDB_ENTITY",
        "api_key": "WANDB_API_KEY",
        "base_url": "WANDB_BASE_URL",
        "mode": "WANDB_MODE",
    },
    "tensorboard": {},
    "trackio": {
        "project": "TRACKIO_PROJECT",
        "space_id": "TRACKIO_SPACE_ID",
        "hf_token": "HF_TOKEN",
    },
}
#: Settings shown back as they are (not keys): the rest are only said to be set.
PLAIN_SETTINGS: dict[str, tuple[str, ...]] = {
    "mlflow": ("experiment", "username"),
    "wandb": ("project", "entity", "mode"),
    "tensorboard": (),
    "trackio": ("project", "space_id"),
}
WANDB_MODES = ("online", "offline", "disabled")
#: A run's name in its trackers: the panel's run id (unique, the same for every attempt), so
#: Trackio, which finds a run by its name, resumes it in a later attempt and in the final
#: evaluation instead of opening a new one. Handed over with the settings; pretrain.py reads it
#: (by this name: it imports nothing of the panel) into ``--run_name`` unless one was given.
RUN_NAME_ENV = "CPT_TRACKER_RUN_NAME"
