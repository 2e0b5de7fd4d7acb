"""A chart's answer (``GET /runs/{id}/metrics``): per wanted key and attempt, at most
``max_points`` points whatever the run's length. A range of up to ``RAW_FACTOR`` x max_points
steps is thinned exactly from its points; a longer one reads the finest level with at most
``max_points / 2`` buckets and keeps each bucket's min and max, plus the range's first and last
point (a zoom's cut edge bucket is aggregated again from its points)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from backend.models import MetricAttempt, MetricSeries
from backend.services.downsample import minmax_indices
from backend.services.metrics.levels import LEVELS, RAW_FACTOR, TOP, level_columns
from backend.services.metrics.segments import Columns, arrays, none, points, thinned

_T_SERIES: Any = MetricSeries.__table__  # type: ignore[attr-defined]
_T_ATTEMPTS: Any = MetricAttempt.__table__  # type: ignore[attr-defined]
_S, _A = _T_SERIES.c, _T_ATTEMPTS.c


def _empty() -> Columns:
    return {"step": [], "value": [], "tokens_seen": [], "time": []}


def run_series(conn: Connection, run_id: str) -> list[tuple[int, str]]:
    """(id, key) of the run's series, in the order the keys first appeared."""
    q = select(_S.id, _S.key).where(_S.run_id == run_id).order_by(_S.id)
    return [(int(i), str(k)) for i, k in conn.execute(q)]


def attempt_starts(conn: Connection, run_id: str) -> list[tuple[int, int]]:
    """(attempt, first step) of each attempt, in order: one row per attempt."""
    rows = conn.execute(
        select(_A.attempt, _A.first_step).where(_A.run_id == run_id).order_by(_A.attempt)
    ).all()
    return [(int(a), int(s)) for a, s in rows]


def windows(
    conn: Connection, run_id: str, attempt: int | None, lo: int | None, hi: int | None
) -> list[tuple[int, int | None, int | None]]:
    """(attempt, lo, hi) step windows to read, in order.

    Across resumes an attempt's points past the step where a later attempt started are hidden
    (a point at the resume step itself belongs to the earlier attempt).
    """
    if attempt is not None:
        return [(attempt, lo, hi)]
    rows = attempt_starts(conn, run_id)
    out: list[tuple[int, int | None, int | None]] = []
    for i, (att, _first) in enumerate(rows):
        later = [int(s) for _, s in rows[i + 1 :]]
        cut = min(later) if later else None
        top = hi if cut is None else (cut if hi is None else min(hi, cut))
        out.append((int(att), lo, top))
    return out


def _thin(cols: Columns, max_points: int) -> Columns:
    idx = minmax_indices(cols["value"], max_points)
    if len(idx) == len(cols["step"]):
        return cols
    return {name: [column[i] for i in idx] for name, column in cols.items()}


#: A whole point as the read answers it: step, value, time, tokens_seen.
_Full = tuple[int, float, float | None, float | None]


def windowpoints(
    conn: Connection, sid: int, att: int, lo: int | None, hi: int | None, max_points: int
) -> Columns:
    """At most ``max_points`` points of one series and attempt in [lo, hi]: first, last, and the
    min and max of each of ~max_points/2 step ranges (a spike survives any zoom level)."""
    top = level_columns(conn, sid, att, TOP)
    if not top:
        return _empty()
    first, last = min(top[2]), max(top[3])
    lo = first if lo is None else max(lo, first)
    hi = last if hi is None else min(hi, last)
    if lo > hi:
        return _empty()
    # Few enough points (steps are unique per series and attempt): read them and thin exactly.
    # Past RAW_FACTOR x max_points steps the finest level has at least max_points / 4 buckets.
    if sum(top[1]) <= RAW_FACTOR * max_points or hi - lo + 1 <= RAW_FACTOR * max_points:
        return thinned(conn, sid, att, lo, hi, max_points)
    # Each bucket gives its min and max, plus the range's first and last point: the finest level
    # with at most (max_points - 2) / 2 buckets in the range (more than a quarter of max_points,
    # the level below having too many).
    half = max(1, (max_points - 2) // 2)
    level = next((k for k in LEVELS if (hi >> k) - (lo >> k) + 1 <= half), TOP)
    cols = level_columns(conn, sid, att, level, lo >> level, hi >> level)
    if not cols or sum(cols[1]) <= RAW_FACTOR * max_points:
        return thinned(conn, sid, att, lo, hi, max_points)
    # A bucket cut by the range (a zoomed view) is aggregated from its points inside the range;
    # only the first and the last bucket can be cut.
    for i in sorted({0, len(cols[0]) - 1}, reverse=True):
        if (cols[2][i] < lo or cols[3][i] > hi) and not _refill(conn, sid, att, cols, i, lo, hi):
            for col in cols:
                del col[i]
    if not cols[0]:
        return _empty()
    _, _, firsts, lasts, min_s, min_v, max_s, max_v, min_t, min_k, max_t, max_k = cols
    keep: dict[int, _Full] = {}
    m = len(firsts)
    if m <= half:
        # The usual case: every bucket is a group of its own (the max second: a bucket of one
        # point has the same point as both, kept once).
        keep.update(zip(min_s, zip(min_s, min_v, min_t, min_k, strict=True), strict=True))
        keep.update(zip(max_s, zip(max_s, max_v, max_t, max_k, strict=True), strict=True))
    groups = min(half, m) if m > half else 0
    for g in range(groups):
        a, b = g * m // groups, (g + 1) * m // groups
        if a >= b:
            continue
        # The group's lowest min and highest max: builtins over slices (C speed).
        window = min_v[a:b]
        i = a + window.index(min(window))
        window = max_v[a:b]
        k = a + window.index(max(window))
        keep[min_s[i]] = (min_s[i], min_v[i], min_t[i], min_k[i])
        keep[max_s[k]] = (max_s[k], max_v[k], max_t[k], max_k[k])
    # The range's first and last points: a lookup each, in the one segment that holds it.
    for step in (firsts[0], lasts[-1]):
        if step not in keep:
            one = points(conn, sid, att, step, step)
            keep[step] = (step, one["value"][0], one["time"][0], one["tokens_seen"][0])
    steps = sorted(keep)
    return {
        "step": steps,
        "value": [keep[s][1] for s in steps],
        "time": [keep[s][2] for s in steps],
        "tokens_seen": [keep[s][3] for s in steps],
    }


def _refill(
    conn: Connection, sid: int, att: int, cols: list[list[Any]], i: int, lo: int, hi: int
) -> bool:
    """Row ``i`` of a level, cut by the range [lo, hi]: its first, last, min and max recomputed
    in place from its points inside the range. False when none of them is inside."""
    steps, vals, times, tokens = arrays(conn, sid, att, max(lo, cols[2][i]), min(hi, cols[3][i]))
    if not steps:
        return False
    a, b = vals.index(min(vals)), vals.index(max(vals))
    cols[2][i], cols[3][i] = steps[0], steps[-1]
    cols[4][i], cols[5][i], cols[8][i], cols[9][i] = (
        steps[a],
        vals[a],
        none(times[a]),
        none(tokens[a]),
    )
    cols[6][i], cols[7][i], cols[10][i], cols[11][i] = (
        steps[b],
        vals[b],
        none(times[b]),
        none(tokens[b]),
    )
    return True


def read(
    conn: Connection,
    run_id: str,
    keys: list[str] | None,
    step_min: int | None,
    step_max: int | None,
    max_points: int,
    attempt: int | None,
) -> dict[str, Any]:
    """The ``GET /runs/{id}/metrics`` answer: the wanted keys' series and all the run's keys."""
    all_series = run_series(conn, run_id)
    found = [k for _, k in all_series]
    by_key = dict((k, i) for i, k in all_series)
    order = [k for k in dict.fromkeys(keys) if k in by_key] if keys else found
    wins = windows(conn, run_id, attempt, step_min, step_max)
    series: dict[str, Columns] = {}
    for key in order:
        parts = [windowpoints(conn, by_key[key], a, lo, hi, max_points) for a, lo, hi in wins]
        parts = [p for p in parts if p["step"]]
        if not parts:
            continue
        if len(parts) == 1:
            series[key] = parts[0]
            continue
        merged = _empty()
        for p in parts:
            for name in merged:
                merged[name] += p[name]
        series[key] = _thin(merged, max_points)
    return {"series": series, "keys": found}
