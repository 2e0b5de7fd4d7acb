"""The argv of an ``evaluate`` job's tool (``python -m worker.benchmark``), as the job slot runs
it: the run's checkpoint, its base and tokenizer from the run's config, each user value glued to
its flag."""

from __future__ import annotations

import json
import sys

from cpt_contract.jobs import EvaluateParams
from cpt_contract.run_paths import JobPaths, RunPaths
from cpt_contract.settings import Settings


def evaluate_argv(settings: Settings, e: EvaluateParams, paths: JobPaths) -> list[str]:
    run = RunPaths.of(settings.runs_dir, e.run_id)
    model = json.loads(run.config.read_text())["model"]
    argv = [
        sys.executable,
        "-m",
        "worker.benchmark",
        f"--checkpoint={run.checkpoint(e.checkpoint)}",
    ]
    if model.get("model_name_or_path"):
        argv.append(f"--base={model['model_name_or_path']}")
    if model.get("tokenizer_name_or_path"):
        argv.append(f"--tokenizer={model['tokenizer_name_or_path']}")
    argv += [f"--task_file={p}" for p in e.task_files]
    argv += [f"--task={t}" for t in e.tasks]
    if e.limit is not None:
        argv.append(f"--limit={e.limit}")
    if e.num_fewshot is not None:
        argv.append(f"--num_fewshot={e.num_fewshot}")
    return [*argv, f"--batch_size={e.batch_size}", f"--json={paths.result}"]


def evaluate_env(settings: Settings, hub_token: str | None) -> dict[str, str]:
    """The harness's own tasks download their data from the Hub (the panel's endpoint and the
    token the claim carried, only in the environment); local task files read local files only."""
    env = {"HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    if settings.hub_endpoint:
        env["HF_ENDPOINT"] = settings.hub_endpoint
    if hub_token:
        env["HF_TOKEN"] = hub_token
    return env
