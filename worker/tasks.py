"""Celery tasks of the worker. Thin: the run's lifecycle lives in ``worker.runner``."""

from __future__ import annotations

import json
import logging
import re
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
    run_dir = settings.runs_dir / check_run_id(run_id)
    if not re.fullmatch(r"checkpoint-\d+", checkpoint):
        raise ValueError(f"invalid checkpoint name {checkpoint!r}")
    if base_model is None:
        base_model = json.loads((run_dir / "config.json").read_text())["model"][
            "model_name_or_path"
        ]
    adapter = _inside(
        Path(checkpoint_path or run_dir / "output" / checkpoint), run_dir, "checkpoint"
    )
    out = _inside(Path(output_dir or run_dir / "merged" / checkpoint), run_dir, "merge output")
    argv = [sys.executable, "-m", "worker.merge_lora", "--base", str(base_model)]
    argv += ["--adapter", str(adapter), "--output", str(out)]
    log_path = run_dir / "logs" / f"merge-{checkpoint}.log"
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
