"""The experiment trackers the HF Trainer reports to (``--report_to``), where the recipe needs a
word.

MLflow: one panel run is one MLflow run, across its attempts and its final evaluation. The
callback ends its run when training ends, so the final evaluation would open a second one; and a
resumed attempt would start another. Both go into the first (``MLFLOW_RUN_ID``, which the
callback and MLflow's fluent API resume): rank 0 records the run's id in the output dir, next
to the checkpoints, so any attempt that can resume from them finds it too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger("pretrain")

#: The MLflow run of this panel run (its id, one line), in the output dir.
MLFLOW_RUN_FILE = "mlflow_run_id"


def keep_one_mlflow_run(report_to: Any) -> None:
    if "mlflow" not in (report_to or []) or os.environ.get("MLFLOW_RUN_ID"):
        return
    try:
        import mlflow
    except ImportError:
        return
    run = mlflow.last_active_run()
    if run is not None:
        os.environ["MLFLOW_RUN_ID"] = run.info.run_id


def continue_mlflow_run(report_to: Any, output_dir: Path) -> str | None:
    """Before the Trainer is built: a later attempt continues the MLflow run an earlier one
    recorded (unless the environment names one, or that run is gone). Returns its id."""
    if "mlflow" not in (report_to or []) or os.environ.get("MLFLOW_RUN_ID"):
        return None
    try:
        run_id = (output_dir / MLFLOW_RUN_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    if not run_id or not _live_mlflow_run(run_id):
        return None
    os.environ["MLFLOW_RUN_ID"] = run_id
    # MLflow refuses a param logged again with another value (``resume_from_checkpoint``
    # differs): the params stay those of the attempt that opened the run.
    os.environ["MLFLOW_MAX_LOG_PARAMS"] = "0"
    return run_id


def _live_mlflow_run(run_id: str) -> bool:
    """Whether the recorded run still exists and is not deleted (a deleted one cannot be
    resumed: the attempt then opens a new run instead of failing on it)."""
    try:
        from mlflow.tracking import MlflowClient

        run = MlflowClient().get_run(run_id)
    except Exception as exc:  # not found, or the server unreachable: a new run
        logger.warning("MLflow run %s not continued (%s): a new one is opened", run_id, exc)
        return False
    return bool(run.info.lifecycle_stage == "active")


class MlflowRunRecord(TrainerCallback):
    """Rank 0 records the MLflow run the callback opened (after it: user callbacks follow the
    reporting ones) for the attempts that resume this run."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / MLFLOW_RUN_FILE

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero or "mlflow" not in (args.report_to or []):
            return
        import mlflow

        active = mlflow.active_run()
        if active is None:
            return
        if self.path.exists() and self.path.read_text().strip() == active.info.run_id:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(active.info.run_id + "\n")
        tmp.replace(self.path)
