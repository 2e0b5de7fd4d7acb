"""An experiment's runs: the axes' combinations (full grid or listed), each one's config
(preset + base + its values + the budget + the sets' roles), every one validated by the same
checks as ``POST /api/runs``. A bad axis value is a 422 at ``["body", "axes", path, index]``
naming the axis and the value."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from backend.services import runs
from backend.services.validation import ConfigInvalid, ErrorList, error
from cpt_contract.experiments import AXIS_PATTERN, MAX_RUNS, ExperimentSpec
from cpt_contract.runconfig.schema import RunConfig, deep_merge
from cpt_contract.settings import Settings


@dataclass
class Child:
    """One run of the experiment, before it exists."""

    values: dict[str, Any]
    config: RunConfig


def axis_names(spec: ExperimentSpec) -> list[str]:
    if spec.combinations:
        return list(spec.combinations[0])
    return list(spec.axes)


def nested(path: str, value: Any) -> dict[str, Any]:
    """``("training.learning_rate", 1e-4)`` → ``{"training": {"learning_rate": 1e-4}}``."""
    out: dict[str, Any] = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _shape_errors(spec: ExperimentSpec) -> ErrorList:
    errors: ErrorList = []
    if not spec.target:
        errors.append(
            error(["body", "target"], "name the target eval set (one of base.data.eval_sets)")
        )
    if spec.combinations is not None and spec.axes:
        errors.append(
            error(
                ["body", "combinations"],
                "give axes (every combination of their values) or combinations (listed), not both",
                "axes_and_combinations",
            )
        )
        return errors
    if spec.combinations is not None:
        if not spec.combinations:
            errors.append(error(["body", "combinations"], "list at least one combination"))
        names = list(spec.combinations[0]) if spec.combinations else []
        for i, combo in enumerate(spec.combinations):
            if set(combo) != set(names):
                errors.append(
                    error(
                        ["body", "combinations", i],
                        f"every combination names the same axes ({', '.join(names)}); "
                        f"this one names {', '.join(combo) or 'none'}",
                        "combination_axes",
                    )
                )
    for name in axis_names(spec):
        if not re.fullmatch(AXIS_PATTERN, name):
            errors.append(
                error(
                    ["body", "axes", name],
                    f"axis {name!r} is not a run-config field path: write section.field, "
                    "e.g. training.learning_rate",
                    "bad_axis",
                )
            )
    for name, values in spec.axes.items():
        if not values:
            errors.append(
                error(["body", "axes", name], f"axis {name} has no values: give 1 or more")
            )
        for i, value in enumerate(values):
            if value in values[:i]:
                errors.append(
                    error(
                        ["body", "axes", name, i], f"axis {name}: value {value!r} is listed twice"
                    )
                )
    count = len(spec.combinations or []) or math.prod(len(v) for v in spec.axes.values())
    if count > MAX_RUNS:
        errors.append(
            error(
                ["body", "axes"],
                f"{count} runs: an experiment has at most {MAX_RUNS}; drop values or list "
                "the combinations you want",
                "too_many_runs",
            )
        )
    return errors


def combinations(spec: ExperimentSpec) -> list[dict[str, Any]]:
    """Every run's axis values, in launch order (the grid's first axis varies slowest)."""
    if spec.combinations is not None:
        return [dict(c) for c in spec.combinations]
    names = list(spec.axes)
    if not names:
        return [{}]
    return [dict(zip(names, vs, strict=True)) for vs in itertools.product(*spec.axes.values())]


def _budget_steps(spec: ExperimentSpec, merged: dict[str, Any]) -> tuple[int | None, str | None]:
    """Steps of the budget for this run's config (tokens over its own tokens per step)."""
    if spec.budget is None:
        return None, None
    if spec.budget.steps is not None:
        return spec.budget.steps, None
    try:
        cfg = RunConfig.model_validate(merged)
    except ValidationError:
        return None, None  # the full validation below names the problem
    if not cfg.data.block_size:
        return None, "a budget in tokens needs data.block_size (in base or as an axis)"
    t = cfg.training
    per_step = (
        t.per_device_train_batch_size
        * t.gradient_accumulation_steps
        * cfg.data.block_size
        * cfg.launch.nnodes
        * cfg.launch.nproc_per_node
    )
    assert spec.budget.tokens is not None
    return max(1, math.ceil(spec.budget.tokens / per_step)), None


def _axis_of(names: list[str], loc: list[Any]) -> str | None:
    """The axis an error inside ``["body", "config", ...]`` falls under, if any."""
    rest = [str(p) for p in loc[2:]]
    for name in names:
        parts = name.split(".")
        if rest[: len(parts)] == parts:
            return name
    return None


def child_dict(settings: Settings, spec: ExperimentSpec, values: dict[str, Any]) -> dict[str, Any]:
    merged = deep_merge(runs.preset_dict(settings, spec.preset), spec.base)
    for path, value in values.items():
        merged = deep_merge(merged, nested(path, value))
    return merged


def expand(settings: Settings, session: Session | None, spec: ExperimentSpec) -> list[Child]:
    """Every run's validated config; one 422 listing every problem (nothing is stored)."""
    errors = _shape_errors(spec)
    if errors:
        raise ConfigInvalid(errors)
    names = axis_names(spec)
    combos = combinations(spec)
    children: list[Child] = []
    per_child: list[ErrorList] = []
    for values in combos:
        merged = child_dict(settings, spec, values)
        steps, budget_problem = _budget_steps(spec, merged)
        own: ErrorList = []
        if budget_problem:
            own.append(error(["body", "budget", "tokens"], budget_problem, "budget_needs_block"))
        if steps is not None:
            merged = deep_merge(merged, {"training": {"max_steps": steps}})
        try:
            config, _ = runs.checked_config(settings, merged, session)
        except ConfigInvalid as exc:
            own.extend(exc.errors)
            per_child.append(own)
            continue
        own.extend(_set_problems(spec, config))
        per_child.append(own)
        if not own:
            children.append(Child(values, config))
    if any(per_child):
        raise ConfigInvalid(_attribute(spec, names, combos, per_child))
    return children


def _set_problems(spec: ExperimentSpec, config: RunConfig) -> ErrorList:
    """The target and retain sets exist in the run's eval sets; they get their roles; the
    step-0 baseline is on (forgetting is measured from it)."""
    sets = config.data.eval_sets or {}
    known = ", ".join(sets) or "none"
    out: ErrorList = []
    wanted: list[tuple[list[str | int], str]] = [(["body", "target"], spec.target)]
    wanted += [(["body", "retain", i], n) for i, n in enumerate(spec.retain)]
    for loc, name in wanted:
        if name not in sets:
            out.append(
                error(
                    loc,
                    f"eval set {name!r} is not in data.eval_sets (known: {known}): add it to "
                    "base.data.eval_sets",
                    "unknown_eval_set",
                )
            )
    if spec.target in spec.retain:
        out.append(
            error(["body", "retain"], f"{spec.target!r} is the target set, not a retain set")
        )
    if not config.training.eval_at_start:
        out.append(
            error(
                ["body", "base", "training", "eval_at_start"],
                "an experiment measures every set from step 0: leave eval_at_start on",
                "needs_step_0",
            )
        )
    if not out:
        sets[spec.target].role = "target"
        for name in spec.retain:
            sets[name].role = "retain"
    return out


def _attribute(
    spec: ExperimentSpec, names: list[str], combos: list[dict[str, Any]], per_child: list[ErrorList]
) -> ErrorList:
    """Each error once, where it belongs: inside an axis's field → that axis and value; the
    same in every run → the base; otherwise → the combination that has it."""
    out: ErrorList = []
    seen: set[tuple[Any, ...]] = set()
    everywhere = set.intersection(
        *({(tuple(map(str, e["loc"])), e["msg"]) for e in errs} for errs in per_child)
    )

    def add(entry: dict[str, Any]) -> None:
        key = (tuple(map(str, entry["loc"])), entry["msg"])
        if key not in seen:
            seen.add(key)
            out.append(entry)

    for i, errs in enumerate(per_child):
        for e in errs:
            loc = list(e["loc"])
            if loc[:2] != ["body", "config"]:
                add(e)
                continue
            axis = _axis_of(names, loc)
            if axis is not None:
                value = combos[i][axis]
                where: list[Any] = ["body", "combinations", i, axis]
                if spec.combinations is None:
                    where = ["body", "axes", axis, spec.axes[axis].index(value)]
                rest = ".".join(str(p) for p in loc[2:])
                add(
                    error(
                        where,
                        f"axis {axis} value {value!r}: {e['msg']}"
                        + (f" (at {rest})" if rest != axis else ""),
                        e.get("type", "value_error"),
                    )
                )
            elif (tuple(map(str, loc)), e["msg"]) in everywhere:
                add(error(["body", "base", *loc[2:]], e["msg"], e.get("type", "value_error")))
            else:
                shown = ", ".join(f"{k}={v!r}" for k, v in combos[i].items())
                add(
                    error(
                        ["body", "combinations", i],
                        f"the run {shown}: {'.'.join(map(str, loc[2:])) or 'config'}: {e['msg']}",
                        e.get("type", "value_error"),
                    )
                )
    return out
