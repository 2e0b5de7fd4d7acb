"""The previous release's metrics query (read and decode every event of the run), kept as the
reference the metrics store's answers are compared with."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from backend.services.downsample import minmax_indices

NON_METRICS = frozenset({"seq", "time", "step", "kind", "attempt"})


class _Row(NamedTuple):
    kind: str
    attempt: int
    step: int | None
    time: float | None
    data: dict[str, Any]


def _effective(rows: list[_Row]) -> list[_Row]:
    by_attempt: dict[int, list[_Row]] = {}
    for r in rows:
        by_attempt.setdefault(r.attempt, []).append(r)
    if len(by_attempt) < 2:
        return rows
    attempts = sorted(by_attempt)
    first_step = {
        a: min((r.step for r in by_attempt[a] if r.step is not None), default=None)
        for a in attempts
    }
    out: list[_Row] = []
    for i, a in enumerate(attempts):
        later = [s for b in attempts[i + 1 :] if (s := first_step[b]) is not None]
        cut = min(later) if later else None
        out += [r for r in by_attempt[a] if cut is None or r.step is None or r.step <= cut]
    return out


def metric_series(
    conn: Connection,
    run_id: str,
    keys: list[str] | None,
    step_min: int | None,
    step_max: int | None,
    max_points: int,
    attempt: int | None,
) -> dict[str, Any]:
    import json

    sql = (
        "SELECT kind, attempt, step, time, data FROM run_events WHERE run_id = :r "
        "AND kind IN ('log', 'eval', 'start')"
        + (" AND attempt = :a" if attempt is not None else "")
        + " ORDER BY attempt, seq"
    )
    rows = [
        _Row(k, a, s, t, d if isinstance(d, dict) else json.loads(d))
        for k, a, s, t, d in conn.execute(text(sql), {"r": run_id, "a": attempt})
    ]
    if attempt is None:
        rows = _effective(rows)
    found: dict[str, None] = {}
    wanted = set(keys) if keys else None
    series: dict[str, dict[str, list[Any]]] = {}
    tokens_seen: Any = None
    for r in rows:
        if r.kind == "start":
            continue
        data = r.data
        seen = data.get("tokens_seen")
        if isinstance(seen, int | float):
            tokens_seen = seen
        in_range = r.step is not None and not (
            (step_min is not None and r.step < step_min)
            or (step_max is not None and r.step > step_max)
        )
        for key, value in data.items():
            if key in NON_METRICS or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            found[key] = None
            if not in_range or (wanted is not None and key not in wanted):
                continue
            s = series.get(key)
            if s is None:
                s = series[key] = {"step": [], "value": [], "tokens_seen": [], "time": []}
            s["step"].append(r.step)
            s["value"].append(value)
            s["tokens_seen"].append(tokens_seen)
            s["time"].append(r.time)
    order = [k for k in keys if k in series] if keys else [k for k in found if k in series]
    out: dict[str, dict[str, list[Any]]] = {}
    for key in order:
        s = series[key]
        idx = minmax_indices(s["value"], max_points)
        out[key] = {name: [column[i] for i in idx] for name, column in s.items()}
    return {"series": out, "keys": list(found)}
