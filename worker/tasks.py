"""Celery tasks of the worker. Thin: the run's lifecycle lives in ``worker.runner``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from backend.core.celery_config import MERGE_LORA_TASK, RUN_TRAINING_TASK
from backend.core.config import get_settings
from worker.celery_app import app
from worker.registry import check_run_id
from worker.runner import ROOT, child_env, run_attempt

log = logging.getLogger(__name__)


@app.task(name=RUN_TRAINING_TASK)
def run_training(run_id: str, attempt: int) -> str | None:
    outcome = run_attempt(get_settings(), run_id, int(attempt))
    return None if outcome is None else outcome.status


def merged_dir(run_dir: Path, checkpoint_name: str) -> Path:
    return run_dir / "merged" / checkpoint_name


@app.task(name=MERGE_LORA_TASK)
def merge_lora(run_id: str, checkpoint_name: str, output: str | None = None) -> int:
    """Merge a LoRA checkpoint into its base model (``python -m worker.merge_lora``).

    The log goes to ``<run_dir>/logs/merge-<checkpoint>.log``; returns the exit code.
    """
    settings = get_settings()
    run_dir = settings.runs_dir / check_run_id(run_id)
    if not (checkpoint_name.startswith("checkpoint-") and checkpoint_name[11:].isdigit()):
        raise ValueError(f"invalid checkpoint name {checkpoint_name!r}")
    config = json.loads((run_dir / "config.json").read_text())
    base = config["model"]["model_name_or_path"]
    adapter = run_dir / "output" / checkpoint_name
    out = Path(output) if output else merged_dir(run_dir, checkpoint_name)
    if not out.resolve().is_relative_to(run_dir.resolve()):
        raise ValueError(f"merge output {out} must stay inside the run dir {run_dir}")
    argv = [sys.executable, "-m", "worker.merge_lora", "--base", str(base)]
    argv += ["--adapter", str(adapter), "--output", str(out)]
    tokenizer = config["model"].get("tokenizer_name_or_path")
    if tokenizer:
        argv += ["--tokenizer", str(tokenizer)]
    log_path = run_dir / "logs" / f"merge-{checkpoint_name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = child_env(use_cpu=True, nproc=1, concurrency=settings.worker_concurrency, lease=None)
    with open(log_path, "ab") as log_file:
        result = subprocess.run(argv, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    log.info("merge %s/%s -> %s: exit %s", run_id, checkpoint_name, out, result.returncode)
    return result.returncode
