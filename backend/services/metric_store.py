"""The metrics store: numeric metrics as narrow rows plus min/max/last levels kept at ingest.

Why: reading a chart from ``run_events`` meant reading and JSON-decoding every event of the run
whatever keys or ``max_points`` were asked for, so the query grew with the run (seconds and
hundreds of MB at 10^6 points). Here

- ``metric_points`` holds one row per (series, attempt, step) → value (a series is a run's key);
- ``metric_levels`` holds, for each level k in ``LEVELS``, one row per bucket ``step >> k`` with
  the count, first/last step, last value and the min and max (step and value), updated in bulk by
  every ingest batch (a batch of 200 consecutive steps touches ~25 level rows per key);
- ``metric_attempts`` holds where each attempt starts (a resume takes over from that step).

A downsampled read picks the finest level with at most ``max_points`` buckets in the range, so
it reads O(max_points) rows per key whatever the run's length, then fetches only the points it
keeps by primary key. ``run_events`` stays the record for replay and exports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, case, select
from sqlalchemy.dialects import postgresql, sqlite

from backend.models import MetricAttempt, MetricLevel, MetricPoint, MetricSeries
from backend.services.downsample import minmax_indices

#: Bookkeeping fields of an event that are not metrics.
NON_METRICS = frozenset(
    {"seq", "time", "step", "kind", "attempt", "interval_steps", "train_seconds", "seconds"}
)
#: Event kinds whose numeric fields are metrics; "start" only marks where an attempt begins.
METRIC_KINDS = ("log", "eval")
#: Bucket widths 2^k: each level has 4x fewer buckets than the one below.
LEVELS = (4, 6, 8, 10, 12, 14, 16, 18, 20)
TOP = LEVELS[-1]

_T_POINTS: Any = MetricPoint.__table__  # type: ignore[attr-defined]
_T_LEVELS: Any = MetricLevel.__table__  # type: ignore[attr-defined]
_T_SERIES: Any = MetricSeries.__table__  # type: ignore[attr-defined]
_T_ATTEMPTS: Any = MetricAttempt.__table__  # type: ignore[attr-defined]
_P, _L, _S, _A = _T_POINTS.c, _T_LEVELS.c, _T_SERIES.c, _T_ATTEMPTS.c


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def is_metric(key: str, value: Any) -> bool:
    return (
        key not in NON_METRICS
        and not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Ev:
    """What the store needs of one event (the raw row stays in ``run_events``)."""

    attempt: int
    kind: str
    step: int | None
    time: float | None
    data: dict[str, Any]


# --- write side ------------------------------------------------------------------------------


def series_ids(conn: Connection, run_id: str, keys: Iterable[str]) -> dict[str, int]:
    """The ids of these keys' series, created when missing."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    q = select(_S.key, _S.id).where(_S.run_id == run_id, _S.key.in_(wanted))
    ids = {k: int(i) for k, i in conn.execute(q)}
    missing = [k for k in wanted if k not in ids]
    if missing:
        # In first-seen order: the read side lists keys by id, i.e. in the order they appeared.
        stmt = _insert(conn, _T_SERIES).on_conflict_do_nothing(index_elements=["run_id", "key"])
        conn.execute(stmt, [{"run_id": run_id, "key": k} for k in missing])
        ids.update({k: int(i) for k, i in conn.execute(q)})
    return ids


def add_events(
    conn: Connection, run_id: str, events: Sequence[Ev], tokens_seen: float | None
) -> float | None:
    """Write the metric points of these new events (in seq order) and fold them into the levels.

    ``tokens_seen``: the last count logged before these events (eval events borrow it); returns
    the count after them, for the next call.
    """
    first_steps: dict[int, int] = {}
    points: dict[tuple[str, int, int], tuple[float, float | None, float | None]] = {}
    for ev in events:
        if ev.step is not None and ev.kind in (*METRIC_KINDS, "start"):
            prev = first_steps.get(ev.attempt)
            first_steps[ev.attempt] = ev.step if prev is None else min(prev, ev.step)
        if ev.kind not in METRIC_KINDS:
            continue
        seen = ev.data.get("tokens_seen")
        if isinstance(seen, int | float) and not isinstance(seen, bool):
            tokens_seen = float(seen)
        if ev.step is None:
            continue  # a chart point needs a step
        for key, value in ev.data.items():
            t = type(value)
            # is_metric(), inlined: bool is not int here; v - v == 0 excludes NaN and inf.
            if ((t is float and value - value == 0) or t is int) and key not in NON_METRICS:
                # Two values of one key at one step (e.g. ``epoch`` in a log and an eval): the
                # first stays, as the primary key does across batches.
                pk = (key, ev.attempt, ev.step)
                if pk not in points:
                    points[pk] = (float(value), ev.time, tokens_seen)
    if first_steps:
        stmt = _insert(conn, _T_ATTEMPTS)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "attempt"],
            set_={
                "first_step": case(
                    (stmt.excluded.first_step < _A.first_step, stmt.excluded.first_step),
                    else_=_A.first_step,
                )
            },
        )
        conn.execute(
            stmt,
            [{"run_id": run_id, "attempt": a, "first_step": s} for a, s in first_steps.items()],
        )
    if not points:
        return tokens_seen
    ids = series_ids(conn, run_id, dict.fromkeys(k for k, _, _ in points))
    rows = [(ids[k], a, s, v, t, seen) for (k, a, s), (v, t, seen) in points.items()]
    # Plain DB-API executemany: building SQLAlchemy parameters per row cost more than SQLite.
    executemany(conn, _POINTS_SQL, rows)
    executemany(conn, _LEVELS_SQL, _fold_levels(rows))
    return tokens_seen


_POINTS_SQL = (
    "INSERT INTO metric_points (series_id, attempt, step, value, time, tokens_seen) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (series_id, attempt, step) DO NOTHING"
)


def _pick(cond: str, col: str) -> str:
    return f"{col} = CASE WHEN {cond} THEN excluded.{col} ELSE metric_levels.{col} END"


# Every SET expression sees the row as it was before the update (SQLite and PostgreSQL).
_LEVELS_SQL = (
    "INSERT INTO metric_levels (series_id, attempt, level, bucket, n, first_step, last_step, "
    "last_value, min_step, min_value, max_step, max_value) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (series_id, attempt, level, bucket) DO UPDATE SET "
    "n = metric_levels.n + excluded.n, "
    + ", ".join(
        [
            _pick("excluded.first_step < metric_levels.first_step", "first_step"),
            _pick("excluded.last_step > metric_levels.last_step", "last_step"),
            _pick("excluded.last_step > metric_levels.last_step", "last_value"),
            _pick("excluded.min_value < metric_levels.min_value", "min_step"),
            _pick("excluded.min_value < metric_levels.min_value", "min_value"),
            _pick("excluded.max_value > metric_levels.max_value", "max_step"),
            _pick("excluded.max_value > metric_levels.max_value", "max_value"),
        ]
    )
)


def executemany(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sql = sql.replace("%s", "?")
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.executemany(sql, rows)
    finally:
        cur.close()


def _fold_levels(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Level rows for a batch: the finest level from the points, each next one from the last.

    An aggregate is [bucket, n, first_step, last_step, last_value, min_step, min_value,
    max_step, max_value]; points are folded in step order, so a bucket's rows are adjacent.
    """
    by_series: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for sid, att, step, value, _t, _s in rows:
        by_series.setdefault((sid, att), []).append((step, value))
    out: list[tuple[Any, ...]] = []
    for (sid, att), pts in by_series.items():
        pts.sort()
        k0 = LEVELS[0]
        aggs: list[list[Any]] = []
        cur: list[Any] | None = None
        for step, value in pts:
            b = step >> k0
            if cur is None or cur[0] != b:
                cur = [b, 1, step, step, value, step, value, step, value]
                aggs.append(cur)
                continue
            cur[1] += 1
            cur[3], cur[4] = step, value
            if value < cur[6]:
                cur[5], cur[6] = step, value
            if value > cur[8]:
                cur[7], cur[8] = step, value
        prev = LEVELS[0]
        for level in LEVELS:
            if level != prev:
                shift = level - prev
                merged: list[list[Any]] = []
                m: list[Any] | None = None
                for a in aggs:
                    b = a[0] >> shift
                    if m is None or m[0] != b:
                        m = [b, *a[1:]]
                        merged.append(m)
                        continue
                    m[1] += a[1]
                    m[3], m[4] = a[3], a[4]
                    if a[6] < m[6]:
                        m[5], m[6] = a[5], a[6]
                    if a[8] > m[8]:
                        m[7], m[8] = a[7], a[8]
                aggs, prev = merged, level
            out += [(sid, att, level, *a) for a in aggs]
    return out


# --- read side -------------------------------------------------------------------------------

Columns = dict[str, list[Any]]


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


def _query(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """A read through the DB-API cursor: per query, SQLAlchemy's statement building and Row
    objects cost more than SQLite's own work at these sizes."""
    if conn.dialect.name == "sqlite":
        sql = sql.replace("%s", "?")
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _points(conn: Connection, sid: int, att: int, lo: int, hi: int) -> Columns:
    return _columns(
        _query(
            conn,
            "SELECT step, value, tokens_seen, time FROM metric_points WHERE series_id = %s "
            "AND attempt = %s AND step >= %s AND step <= %s ORDER BY step",
            (sid, att, lo, hi),
        )
    )


def _columns(rows: Sequence[Any]) -> Columns:
    out = _empty()
    for step, value, seen, t in rows:
        out["step"].append(step)
        out["value"].append(value)
        out["tokens_seen"].append(seen)
        out["time"].append(t)
    return out


def _thin(cols: Columns, max_points: int) -> Columns:
    idx = minmax_indices(cols["value"], max_points)
    if len(idx) == len(cols["step"]):
        return cols
    return {name: [column[i] for i in idx] for name, column in cols.items()}


class _Bucket(NamedTuple):
    bucket: int
    n: int
    first_step: int
    last_step: int
    min_step: int
    min_value: float
    max_step: int
    max_value: float


def _bucket_rows(
    conn: Connection, sid: int, att: int, level: int, b0: int | None = None, b1: int | None = None
) -> list[_Bucket]:
    sql = (
        "SELECT bucket, n, first_step, last_step, min_step, min_value, max_step, max_value "
        "FROM metric_levels WHERE series_id = %s AND attempt = %s AND level = %s"
    )
    params: list[Any] = [sid, att, level]
    if b0 is not None and b1 is not None:
        sql += " AND bucket >= %s AND bucket <= %s"
        params += [b0, b1]
    return [_Bucket(*r) for r in _query(conn, sql + " ORDER BY bucket", params)]


def window_points(
    conn: Connection, sid: int, att: int, lo: int | None, hi: int | None, max_points: int
) -> Columns:
    """At most ``max_points`` points of one series and attempt in [lo, hi]: first, last, and the
    min and max of each of ~max_points/2 step ranges (a spike survives any zoom level)."""
    top = _bucket_rows(conn, sid, att, TOP)
    if not top:
        return _empty()
    first = min(r.first_step for r in top)
    last = max(r.last_step for r in top)
    lo = first if lo is None else max(lo, first)
    hi = last if hi is None else min(hi, last)
    if lo > hi:
        return _empty()
    total = sum(r.n for r in top)
    # Few enough points (steps are unique per series and attempt): read them and thin exactly.
    if total <= 2 * max_points or hi - lo + 1 <= 2 * max_points:
        return _thin(_points(conn, sid, att, lo, hi), max_points)
    level = next((k for k in LEVELS if (hi >> k) - (lo >> k) + 1 <= max_points), TOP)
    rows = _bucket_rows(conn, sid, att, level, lo >> level, hi >> level)
    if sum(r.n for r in rows) <= 2 * max_points:
        return _thin(_points(conn, sid, att, lo, hi), max_points)
    # A bucket cut by the range (a zoomed view): aggregate its part inside from the points.
    buckets: list[tuple[int, int, int, float, int, float]] = []
    for i, r in enumerate(rows):
        start, end = r.bucket << level, ((r.bucket + 1) << level) - 1
        cut = (i == 0 and r.first_step < lo) or (i == len(rows) - 1 and r.last_step > hi)
        if not cut:
            buckets.append(
                (r.first_step, r.last_step, r.min_step, r.min_value, r.max_step, r.max_value)
            )
            continue
        part = _points(conn, sid, att, max(lo, start), min(hi, end))
        if not part["step"]:
            continue
        vals = part["value"]
        i_min = min(range(len(vals)), key=vals.__getitem__)
        i_max = max(range(len(vals)), key=vals.__getitem__)
        s = part["step"]
        buckets.append((s[0], s[-1], s[i_min], vals[i_min], s[i_max], vals[i_max]))
    if not buckets:
        return _empty()
    groups = max(1, (max_points - 2) // 2)
    keep = {buckets[0][0], buckets[-1][1]}
    m = len(buckets)
    for g in range(min(groups, m)):
        part_b = buckets[g * m // min(groups, m) : (g + 1) * m // min(groups, m)]
        if not part_b:
            continue
        keep.add(min(part_b, key=lambda b: b[3])[2])
        keep.add(max(part_b, key=lambda b: b[5])[4])
    return _by_steps(conn, sid, att, sorted(keep))


def _by_steps(conn: Connection, sid: int, att: int, steps: list[int]) -> Columns:
    sql = "SELECT step, value, tokens_seen, time FROM metric_points WHERE series_id = %s AND attempt = %s AND "
    if conn.dialect.name == "postgresql":
        # One array parameter: one plan (an index scan) whatever the number of steps. The cast
        # keeps its type fixed: psycopg sends smallint[] or integer[] by the largest step, and a
        # new parameter type means a new prepared statement.
        rows = _query(conn, sql + "step = ANY(%s::integer[])", (sid, att, steps))
    else:
        rows = []
        for i in range(0, len(steps), 500):
            chunk = steps[i : i + 500]
            marks = ", ".join("%s" for _ in chunk)
            rows += _query(conn, sql + f"step IN ({marks})", (sid, att, *chunk))
    rows.sort(key=lambda r: r[0])
    return _columns(rows)


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
        parts = [window_points(conn, by_key[key], a, lo, hi, max_points) for a, lo, hi in wins]
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
