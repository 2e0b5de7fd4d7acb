"""The experiment trackers the HF Trainer reports to (``--report_to``), where the recipe needs a
word: MLflow's callback ends its run when training ends, so the final evaluation would open a
second MLflow run; it goes into the first (``MLFLOW_RUN_ID``, which the callback resumes)."""

from __future__ import annotations

import os
from typing import Any


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
