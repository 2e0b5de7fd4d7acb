"""Sorting the runs list by any column the table can show, in SQL (so it holds across pages).

A sort key is a run column (``loss``, ``started_at``...), ``config.<section>.<field>`` (any field
of the run-config schema) or ``metric.<key>.last|best`` (from the run's metrics summary); a
leading ``-`` sorts descending. Unknown values are last in both directions.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Float, cast
from sqlmodel import col

from backend.models import Run
from backend.services.validation import ConfigInvalid, error
from cpt_contract.runconfig.schema import RunConfig

COLUMNS = {
    "created_at": Run.created_at,
    "started_at": Run.started_at,
    "finished_at": Run.finished_at,
    "name": Run.name,
    "status": Run.status,
    "method": Run.method,
    "model": Run.model,
    "owner": Run.owner,
    "step": Run.step,
    "loss": Run.loss,
    "eval_loss": Run.eval_loss,
    "perplexity": Run.perplexity,
    "tokens_per_second": Run.tokens_per_second,
    "tokens_seen": Run.tokens_seen,
}
_METRIC = re.compile(r"^metric\.([A-Za-z0-9_./-]{1,64})\.(last|best)$")


def _config_kind(section: str, name: str) -> str | None:
    """'number', 'text' or None (no such field) for a run-config field."""
    info = RunConfig.model_fields.get(section)
    model = info.annotation if info else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    field = model.model_fields.get(name)
    if field is None:
        return None
    args = [
        a for a in (typing.get_args(field.annotation) or (field.annotation,)) if a is not type(None)
    ]
    # bool is an int to Python, but JSON true cannot be cast to a float on PostgreSQL.
    numeric = all(
        isinstance(a, type) and issubclass(a, int | float) and a is not bool for a in args
    )
    return "number" if numeric and args else "text"


def _expression(key: str) -> Any:
    if key in COLUMNS:
        return col(COLUMNS[key])
    if key.startswith("config."):
        parts = key.split(".")
        kind = _config_kind(*parts[1:]) if len(parts) == 3 else None
        if kind is not None:
            value = Run.__table__.c.config[(parts[1], parts[2])]  # type: ignore[attr-defined]
            return value.as_float() if kind == "number" else value.as_string()
    if m := _METRIC.match(key):
        value = Run.__table__.c.metrics_summary[(m.group(1), m.group(2))]  # type: ignore[attr-defined]
        return cast(value.as_float(), Float)
    return None


def order_by(sort: str | None) -> list[Any]:
    """ORDER BY clauses: the key's (nulls last), then newest first as the tie-break."""
    newest = [col(Run.created_at).desc(), col(Run.id).desc()]
    if not sort:
        return newest
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    expr = _expression(key)
    if expr is None:
        raise ConfigInvalid(
            [
                error(
                    ["query", "sort"],
                    f"cannot sort by {key!r}: use one of {', '.join(COLUMNS)}, "
                    "config.<section>.<field> or metric.<key>.last|best, with '-' for descending",
                    "bad_sort",
                )
            ]
        )
    ordered = expr.desc() if desc else expr.asc()
    return [expr.is_(None), ordered, *newest]
