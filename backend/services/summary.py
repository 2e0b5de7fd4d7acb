"""The last and best value of every metric of a run, kept on the run row at ingest.

The runs table can then show any metric's last/best as a column (and sort by it) without reading
a run's events. ``best`` is only given where the direction is known: lower for losses and
perplexities, higher for throughput; a learning rate has no best.
"""

from __future__ import annotations

import math
from typing import Any

from backend.services.metric_store import NON_METRICS

#: Fields of a log/eval event that are counters or bookkeeping, not metrics to summarise.
_NOT_SUMMARISED = NON_METRICS | {"epoch", "tokens_seen", "phase", "name", "path"}


def better(key: str) -> str | None:
    """'min', 'max' or None (no best) for a metric key."""
    k = key.lower()
    if "loss" in k or "perplexity" in k or k.endswith("ppl"):
        return "min"
    if k in {"tokens_per_second", "mfu"} or "accuracy" in k or k.endswith("_acc"):
        return "max"
    return None


def fold(summary: dict[str, Any], data: dict[str, Any], step: int | None) -> dict[str, Any]:
    """A new summary with one log/eval event's numeric fields folded in (the input is unchanged,
    so SQLAlchemy sees a new JSON value)."""
    out = dict(summary)
    for key, value in data.items():
        if key in _NOT_SUMMARISED or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            continue
        cur = dict(out.get(key) or {})
        cur["last"] = value
        cur["last_step"] = step
        mode = better(key)
        best = cur.get("best")
        if mode and (best is None or (value < best if mode == "min" else value > best)):
            cur["best"], cur["best_step"] = value, step
        out[key] = cur
    return out
