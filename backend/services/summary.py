"""The last and best value of every metric of a run, kept on the run row at ingest.

The runs table can then show any metric's last/best as a column (and sort by it) without reading
a run's events. ``best`` is only given where the direction is known: lower for losses and
perplexities, higher for throughput; a learning rate has no best.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.services.metrics.write import NON_METRICS

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


def fold_many(
    summary: dict[str, Any], events: Iterable[tuple[dict[str, Any], int | None]]
) -> dict[str, Any]:
    """A new summary with a batch of log/eval events' numeric fields folded in, in order (the
    input is unchanged, so SQLAlchemy sees a new JSON value); each touched entry is copied once
    per batch, not the whole summary once per event."""
    out = dict(summary)
    fresh: set[str] = set()  # entries already copied for this batch
    for data, step in events:
        for key, value in data.items():
            t = type(value)
            # Numbers only (bool is not int here); v - v == 0 leaves out NaN and inf.
            if not ((t is float and value - value == 0) or t is int) or key in _NOT_SUMMARISED:
                continue
            if key not in fresh:
                out[key] = dict(out.get(key) or {})
                fresh.add(key)
            cur = out[key]
            cur["last"] = value
            cur["last_step"] = step
            mode = _BETTER.get(key)
            if mode is None:
                mode = better(key) or ""
                if len(_BETTER) < 4096:  # a handful of keys in practice; bounded anyway
                    _BETTER[key] = mode
            best = cur.get("best")
            if mode and (best is None or (value < best if mode == "min" else value > best)):
                cur["best"], cur["best_step"] = value, step
    return out


#: better() per key, memoised (a handful of keys, looked up per event).
_BETTER: dict[str, str] = {}
