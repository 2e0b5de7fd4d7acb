"""Celery tasks of the worker. Thin: the run's lifecycle lives in ``worker.runner``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from cpt_contract.broker import MERGE_LORA_TASK, RUN_TRAINING_TASK
from cpt_contract.run_paths import CHECKPOINT_NAME, RunPaths
from cpt_contract.settings import get_settings
from worker.celery_app import app
from worker.registry import check_run_id
from worker.runner import ROOT, child_env, run_attempt

log = logging.getLogger(__name__)


@app.task(name=RUN_TRAINING_TASK)
def run_training(run_id: str, attempt: int) -> str | None:
    outcome = run_attempt(get_settings(), run_id, int(attempt))
    return None if outcome is None else outcome.status


def _inside(path: Path, root: Path, what: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"{what} {path} must stay inside the run dir {root}")
    return resolved


@app.task(name=MERGE_LORA_TASK)
def merge_lora(
    run_id: str,
    checkpoint: str,
    checkpoint_path: str | None = None,
    base_model: str | None = None,
    tokenizer: str | None = None,
    output_dir: str | None = None,
) -> int:
    """Merge a LoRA checkpoint into its base model with ``python -m worker.merge_lora``.

    Keyword arguments as the API sends them; missing ones come from the run dir. The merge
    tool takes the tokenizer from the checkpoint (saved with it), so ``tokenizer`` is informative.
    The log goes to ``<run_dir>/logs/merge-<checkpoint>.log``; returns the exit code.
    """
    settings = get_settings()
    paths = RunPaths.of(settings.runs_dir, check_run_id(run_id))
    run_dir = paths.run_dir
    if not CHECKPOINT_NAME.fullmatch(checkpoint):
        raise ValueError(f"invalid checkpoint name {checkpoint!r}")
    if base_model is None:
        base_model = json.loads(paths.config.read_text())["model"]["model_name_or_path"]
    adapter = _inside(Path(checkpoint_path or paths.checkpoint(checkpoint)), run_dir, "checkpoint")
    out = _inside(Path(output_dir or paths.merged(checkpoint)), run_dir, "merge output")
    argv = [sys.executable, "-m", "worker.merge_lora", "--base", str(base_model)]
    argv += ["--adapter", str(adapter), "--output", str(out)]
    log_path = paths.merge_log(checkpoint)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = child_env(use_cpu=True, nproc=1, concurrency=settings.worker_concurrency, lease=None)
    with open(log_path, "ab") as log_file:
        result = subprocess.run(argv, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    log.info(
        "merge %s/%s (tokenizer %s) -> %s: exit %s",
        run_id,
        checkpoint,
        tokenizer,
        out,
        result.returncode,
    )
    return result.returncode
