"""Run lm-evaluation-harness on a loaded model and keep what the panel stores: per task, each
metric's value and standard error, the samples scored and the shots."""

from __future__ import annotations

import math
from typing import Any


def _sandbox_templates() -> None:
    """The harness renders every task's Jinja templates through ``lm_eval.utils.env``; a user's
    template must not reach Python objects, so that environment becomes a sandboxed one."""
    from jinja2 import BaseLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from lm_eval import utils

    env = ImmutableSandboxedEnvironment(
        loader=BaseLoader, undefined=StrictUndefined, keep_trailing_newline=True
    )
    env.filters.update(utils.env.filters)
    utils.env = env


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def metrics_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"acc,none": 0.5, "acc_stderr,none": 0.1}`` → ``[{"metric": "acc", "value": 0.5,
    "stderr": 0.1}]``; a filter other than ``none`` stays in the name (``exact_match,strict``)."""
    out = []
    for key, value in entry.items():
        if "," not in key or "_stderr," in key or _number(value) is None:
            continue
        metric, filt = key.split(",", 1)
        stderr = _number(entry.get(f"{metric}_stderr,{filt}"))
        name = metric if filt == "none" else f"{metric},{filt}"
        out.append({"metric": name, "value": _number(value), "stderr": stderr})
    return sorted(out, key=lambda m: m["metric"])


def evaluate(
    model: Any,
    tokenizer: Any,
    tasks: list[str | dict[str, Any]],
    *,
    limit: int | None,
    num_fewshot: int | None,
    batch_size: int,
    seed: int,
) -> list[dict[str, Any]]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    _sandbox_templates()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    results = simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=TaskManager(),
        log_samples=False,
        bootstrap_iters=1000,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    if results is None:  # only on ranks other than 0; this tool runs one process
        return []
    samples = results.get("n-samples", {})
    shots = results.get("n-shot", {})
    out = []
    for task, entry in results["results"].items():
        n = samples.get(task, {})
        out.append(
            {
                "task": task,
                "metrics": metrics_of(entry),
                "samples": n.get("effective"),
                "num_fewshot": shots.get(task),
                "group": task in results.get("groups", {}),
            }
        )
    return out
