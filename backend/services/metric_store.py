"""The metrics store: numeric metrics as per-key columnar segments plus min/max/last levels.

Why: reading a chart from ``run_events`` meant reading and JSON-decoding every event of the run
whatever keys or ``max_points`` were asked for, so the query grew with the run (seconds and
hundreds of MB at 10^6 points); and one row per point made the insert the ingest's ceiling. Here

- ``metric_segments`` holds, per series (a run's key) and attempt, runs of up to
  ``SEGMENT_POINTS`` consecutive points as packed columns (steps, values, times, tokens): a
  batch writes one row per key (the series' last segment grows in place until it is full);
- ``metric_levels`` holds, for each level k in ``LEVELS``, one row per bucket ``step >> k`` with
  the count, first/last step, last value and the min and max points, updated in bulk by every
  ingest batch (a batch of 200 consecutive steps touches ~25 level rows per key);
- ``metric_attempts`` holds where each attempt starts (a resume takes over from that step).

A downsampled read picks the finest level with at most ``max_points`` buckets in the range and
answers from those O(max_points) rows per key whatever the run's length (the range's first and
last points, and the part of a bucket cut by a zoomed range, come from at most a few segments).
``run_events`` stays the record for replay and exports.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, TypeAlias

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from backend.models import MetricAttempt, MetricLevel, MetricSegment, MetricSeries
from backend.services.downsample import minmax_indices

#: Bookkeeping fields of an event that are not metrics.
NON_METRICS = frozenset(
    {"seq", "time", "step", "kind", "attempt", "interval_steps", "train_seconds", "seconds"}
)
#: Event kinds whose numeric fields are metrics; "start" only marks where an attempt begins.
METRIC_KINDS = ("log", "eval")
#: Bucket widths 2^k, every k: a read can pick a level with between a quarter and a half of
#: max_points buckets and keep each bucket's min and max as they are (no grouping of buckets,
#: and at most max_points / 2 level rows read: the rows' column values are the query's cost).
#: Ranges of up to ``RAW_FACTOR`` x max_points steps are thinned from the points themselves, so
#: the finest level can be coarse (a 200-step batch touches ~15 level rows per key).
LEVELS = tuple(range(8, 21))
RAW_FACTOR = 2 ** LEVELS[0] // 4
TOP = LEVELS[-1]
#: Points per full segment: a segment row stays a few pages (512 x 28 bytes), and a chart's
#: zoomed edge or a range's first and last point read one or two of them.
SEGMENT_POINTS = 512
#: A series' last segment takes in the next batch's points only while it holds fewer than
#: this: small batches (a slow run ships a few steps every half second) still make segments of
#: 128+ points, and big ones are written once, not rewritten as the tail grows.
SEGMENT_GROW = 128
_NONE = float("nan")  # "no time / no tokens" inside a float64 column
_SWAP = sys.byteorder != "little"  # segments are little-endian on every machine
assert array("i").itemsize == 4 and array("d").itemsize == 8

_T_SEGMENTS: Any = MetricSegment.__table__  # type: ignore[attr-defined]
_T_LEVELS: Any = MetricLevel.__table__  # type: ignore[attr-defined]
_T_SERIES: Any = MetricSeries.__table__  # type: ignore[attr-defined]
_T_ATTEMPTS: Any = MetricAttempt.__table__  # type: ignore[attr-defined]
_L, _S, _A = _T_LEVELS.c, _T_SERIES.c, _T_ATTEMPTS.c


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def is_metric(key: str, value: Any) -> bool:
    return (
        key not in NON_METRICS
        and not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
    )


class Ev(NamedTuple):
    """What the store needs of one event (the raw row stays in ``run_events``)."""

    attempt: int
    kind: str
    step: int | None
    time: float | None
    data: dict[str, Any]


class EventLike(Protocol):
    """Ingest passes its own event tuples: anything with these fields will do."""

    @property
    def attempt(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def step(self) -> int | None: ...
    @property
    def time(self) -> float | None: ...
    @property
    def data(self) -> dict[str, Any]: ...


# --- write side ------------------------------------------------------------------------------


def series_ids(conn: Connection, run_id: str, keys: Iterable[str]) -> dict[str, int]:
    """The ids of these keys' series, created when missing."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    # The run's few keys, through the DB-API: building this statement per batch cost more
    # than running it.
    sql = "SELECT key, id FROM metric_series WHERE run_id = %s"
    want = set(wanted)
    ids = {k: int(i) for k, i in query(conn, sql, (run_id,)) if k in want}
    missing = [k for k in wanted if k not in ids]
    if missing:
        # In first-seen order: the read side lists keys by id, i.e. in the order they appeared.
        stmt = _insert(conn, _T_SERIES).on_conflict_do_nothing(index_elements=["run_id", "key"])
        conn.execute(stmt, [{"run_id": run_id, "key": k} for k in missing])
        ids.update({k: int(i) for k, i in query(conn, sql, (run_id,)) if k in want})
    return ids


Point = tuple[int, float, float, float]  # step, value, time, tokens (NaN = none)


def add_events(
    conn: Connection, run_id: str, events: Sequence[EventLike], tokens_seen: float | None
) -> float | None:
    """Write the metric points of these new events (in seq order) and fold them into the levels.

    ``tokens_seen``: the last count logged before these events (eval events borrow it); returns
    the count after them, for the next call.
    """
    first_steps: dict[int, int] = {}
    by_series: dict[tuple[str, int], dict[int, tuple[float, float, float]]] = {}
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
        step, att = ev.step, ev.attempt
        when = _NONE if ev.time is None else ev.time
        count = _NONE if tokens_seen is None else tokens_seen
        for key, value in ev.data.items():
            t = type(value)
            # is_metric(), inlined: bool is not int here; v - v == 0 excludes NaN and inf.
            if ((t is float and value - value == 0) or t is int) and key not in NON_METRICS:
                pts = by_series.get((key, att))
                if pts is None:
                    pts = by_series[(key, att)] = {}
                # Two values of one key at one step (e.g. ``epoch`` in a log and an eval): the
                # first stays, here and across batches.
                if step not in pts:
                    pts[step] = (float(value), when, count)
    executemany(conn, _ATTEMPTS_SQL, [(run_id, a, s) for a, s in first_steps.items()])
    if not by_series:
        return tokens_seen
    ids = series_ids(conn, run_id, dict.fromkeys(k for k, _ in by_series))
    drops: list[tuple[int, int, int]] = []
    segments: list[tuple[Any, ...]] = []
    fresh: list[tuple[int, int, list[Point]]] = []
    for (key, att), pts in by_series.items():
        sid = ids[key]
        new = sorted((s, v, t, k) for s, (v, t, k) in pts.items())
        if added := _merge(conn, sid, att, new, drops, segments):
            fresh.append((sid, att, added))
    # Rewritten segments go first: a grown tail keeps its primary key.
    executemany(conn, _DROP_SQL, drops)
    executemany(conn, _SEGMENT_SQL, segments)
    executemany(conn, _LEVELS_SQL, _fold_levels(fresh))
    return tokens_seen


def _merge(
    conn: Connection,
    sid: int,
    att: int,
    new: list[Point],
    drops: list[tuple[int, int, int]],
    out: list[tuple[Any, ...]],
) -> list[Point]:
    """Queue the segment rows that add ``new`` (sorted, unique steps) to a series; returns the
    points that were not stored yet (a step already stored keeps its first value)."""
    tail = query(conn, _TAIL_SQL, (sid, att))
    if not tail or new[0][0] > tail[0][1]:
        # The usual case: steps past everything stored. A tail with room grows in place.
        added, merged = new, new
        if tail and tail[0][2] < SEGMENT_GROW:
            merged = _decode(tail[0]) + new
            drops.append((sid, att, tail[0][0]))
    else:
        # Out of order or a repeat (a resend after a lost answer, a log and an eval at one
        # step in two batches): merge with the segments the new steps fall among.
        segs = query(conn, _OVERLAP_SQL, (sid, att, new[-1][0], sid, att, new[0][0], _MIN_STEP))
        stored = [p for seg in segs for p in _decode(seg)]
        have = {p[0] for p in stored}
        added = [p for p in new if p[0] not in have]
        if not added:
            return []
        drops += [(sid, att, seg[0]) for seg in segs]
        merged = sorted(stored + added)
    for i in range(0, len(merged), SEGMENT_POINTS):
        out.append(_encode(sid, att, merged[i : i + SEGMENT_POINTS]))
    return added


def _pack(code: str, xs: Iterable[Any]) -> bytes:
    arr = array(code, xs)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def _unpack(code: str, blob: bytes) -> array[Any]:
    arr = array(code)
    arr.frombytes(blob)
    if _SWAP:
        arr.byteswap()
    return arr


def _encode(sid: int, att: int, pts: list[Point]) -> tuple[Any, ...]:
    steps, vals, times, tokens = zip(*pts, strict=True)
    return (sid, att, steps[0], steps[-1], len(pts), _pack("i", steps), _pack("d", vals),
            _pack("d", times), _pack("d", tokens))  # fmt: skip


def _decode(seg: Sequence[Any]) -> list[Point]:
    cols = (_unpack("i", seg[3]), _unpack("d", seg[4]), _unpack("d", seg[5]), _unpack("d", seg[6]))
    return list(zip(*cols, strict=True))


# Only an earlier step rewrites the row: on PostgreSQL an update that changes nothing still
# writes a new row version, once per batch.
_ATTEMPTS_SQL = (
    "INSERT INTO metric_attempts (run_id, attempt, first_step) VALUES (%s, %s, %s) "
    "ON CONFLICT (run_id, attempt) DO UPDATE SET first_step = excluded.first_step "
    "WHERE excluded.first_step < metric_attempts.first_step"
)
_MIN_STEP = -(2**31)
_SEG_COLS = "first_step, last_step, n, steps, vals, times, tokens"
_TAIL_SQL = (
    f"SELECT {_SEG_COLS} FROM metric_segments WHERE series_id = %s AND attempt = %s "
    "ORDER BY first_step DESC LIMIT 1"
)
# Segments with a step in [lo, hi]: from the one that starts at or before lo (or the first).
_OVERLAP_SQL = (
    f"SELECT {_SEG_COLS} FROM metric_segments WHERE series_id = %s AND attempt = %s "
    "AND first_step <= %s AND first_step >= COALESCE((SELECT first_step FROM metric_segments "
    "WHERE series_id = %s AND attempt = %s AND first_step <= %s ORDER BY first_step DESC "
    "LIMIT 1), %s) ORDER BY first_step"
)
_DROP_SQL = "DELETE FROM metric_segments WHERE series_id = %s AND attempt = %s AND first_step = %s"
_SEGMENT_SQL = (
    "INSERT INTO metric_segments (series_id, attempt, first_step, last_step, n, steps, vals, "
    "times, tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _pick(cond: str, col: str) -> str:
    return f"{col} = CASE WHEN {cond} THEN excluded.{col} ELSE metric_levels.{col} END"


_LOWER = "excluded.min_value < metric_levels.min_value"
_HIGHER = "excluded.max_value > metric_levels.max_value"
# Every SET expression sees the row as it was before the update (SQLite and PostgreSQL).
_LEVELS_SQL = (
    "INSERT INTO metric_levels (series_id, attempt, level, bucket, n, first_step, last_step, "
    "last_value, min_step, min_value, max_step, max_value, min_time, min_tokens, max_time, "
    "max_tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (series_id, attempt, level, bucket) DO UPDATE SET "
    "n = metric_levels.n + excluded.n, "
    + ", ".join(
        [
            _pick("excluded.first_step < metric_levels.first_step", "first_step"),
            _pick("excluded.last_step > metric_levels.last_step", "last_step"),
            _pick("excluded.last_step > metric_levels.last_step", "last_value"),
            *(_pick(_LOWER, c) for c in ("min_step", "min_value", "min_time", "min_tokens")),
            *(_pick(_HIGHER, c) for c in ("max_step", "max_value", "max_time", "max_tokens")),
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


def _none(x: float) -> float | None:
    return None if x != x else x


def _fold_levels(fresh: list[tuple[int, int, list[Point]]]) -> list[tuple[Any, ...]]:
    """Level rows for a batch's new points: the finest level from the points, each next one
    from the level below.

    An aggregate is [bucket, n, first_step, last_step, last_value, min_step, min_value,
    max_step, max_value, min_time, min_tokens, max_time, max_tokens]; points come in step
    order, so a bucket's points are adjacent.
    """
    out: list[tuple[Any, ...]] = []
    for sid, att, pts in fresh:
        k0 = LEVELS[0]
        aggs: list[list[Any]] = []
        cur: list[Any] | None = None
        for step, value, t, k in pts:
            b = step >> k0
            if cur is None or cur[0] != b:
                cur = [b, 1, step, step, value, step, value, step, value, t, k, t, k]
                aggs.append(cur)
                continue
            cur[1] += 1
            cur[3], cur[4] = step, value
            if value < cur[6]:
                cur[5], cur[6], cur[9], cur[10] = step, value, t, k
            if value > cur[8]:
                cur[7], cur[8], cur[11], cur[12] = step, value, t, k
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
                        m[5], m[6], m[9], m[10] = a[5], a[6], a[9], a[10]
                    if a[8] > m[8]:
                        m[7], m[8], m[11], m[12] = a[7], a[8], a[11], a[12]
                aggs, prev = merged, level
            out += [
                (sid, att, level, *a[:9], _none(a[9]), _none(a[10]), _none(a[11]), _none(a[12]))
                for a in aggs
            ]
    return out


#: Segments read per round trip while rebuilding the levels (bounded memory on any run).
_REBUILD_SEGMENTS = 64


def rebuild_levels(conn: Connection) -> None:
    """Every series' levels made anew from its segments, through the fold ingest uses: what a
    migration that changes ``LEVELS`` runs, so moved runs hold exactly what ingest writes."""
    execute(conn, "DELETE FROM metric_levels", ())
    pairs = query(conn, "SELECT DISTINCT series_id, attempt FROM metric_segments", ())
    sql = (
        f"SELECT {_SEG_COLS} FROM metric_segments WHERE series_id = %s AND attempt = %s "
        "AND first_step > %s ORDER BY first_step LIMIT %s"
    )
    for sid, att in pairs:
        after = _MIN_STEP - 1
        while segs := query(conn, sql, (sid, att, after, _REBUILD_SEGMENTS)):
            points = [p for seg in segs for p in _decode(seg)]
            executemany(conn, _LEVELS_SQL, _fold_levels([(int(sid), int(att), points)]))
            after = segs[-1][0]


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


def query(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
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


def execute(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    """One write through the DB-API cursor; returns the rows it changed."""
    if conn.dialect.name == "sqlite":
        sql = sql.replace("%s", "?")
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql, params)
        return int(cur.rowcount)
    finally:
        cur.close()


_Arrays: TypeAlias = "tuple[array[int], array[float], array[float], array[float]]"


def _arrays(conn: Connection, sid: int, att: int, lo: int, hi: int) -> _Arrays:
    """Every point in [lo, hi] as packed columns (steps, values, times, tokens; NaN = none),
    from the segments that hold them: C-speed copies, no Python object per point."""
    steps, vals, times, tokens = array("i"), array("d"), array("d"), array("d")
    for seg in query(conn, _OVERLAP_SQL, (sid, att, hi, sid, att, lo, _MIN_STEP)):
        s = _unpack("i", seg[3])
        i, j = bisect_left(s, lo), bisect_right(s, hi)
        if i >= j:
            continue
        steps += s[i:j]
        vals += _unpack("d", seg[4])[i:j]
        times += _unpack("d", seg[5])[i:j]
        tokens += _unpack("d", seg[6])[i:j]
    return steps, vals, times, tokens


def _columns(cols: _Arrays, idx: list[int] | None = None) -> Columns:
    """The answer's lists: all points, or those at ``idx``."""
    steps, vals, times, tokens = cols
    if idx is None:
        # NaN -> None inline: a call per point would double the cost of a full history.
        return {"step": steps.tolist(), "value": vals.tolist(),
                "time": [None if x != x else x for x in times],
                "tokens_seen": [None if x != x else x for x in tokens]}  # fmt: skip
    return {"step": [steps[i] for i in idx], "value": [vals[i] for i in idx],
            "time": [_none(times[i]) for i in idx], "tokens_seen": [_none(tokens[i]) for i in idx]}  # fmt: skip


def _points(conn: Connection, sid: int, att: int, lo: int, hi: int) -> Columns:
    """Every point in [lo, hi]."""
    return _columns(_arrays(conn, sid, att, lo, hi))


def _thinned(conn: Connection, sid: int, att: int, lo: int, hi: int, max_points: int) -> Columns:
    """The points in [lo, hi], thinned exactly to ``max_points`` (first, last, min and max)."""
    cols = _arrays(conn, sid, att, lo, hi)
    if len(cols[0]) <= max_points:
        return _columns(cols)
    return _columns(cols, minmax_indices(cols[1], max_points))


def _thin(cols: Columns, max_points: int) -> Columns:
    idx = minmax_indices(cols["value"], max_points)
    if len(idx) == len(cols["step"]):
        return cols
    return {name: [column[i] for i in idx] for name, column in cols.items()}


#: A whole point as the read answers it: step, value, time, tokens_seen.
_Full = tuple[int, float, float | None, float | None]


#: A level row's columns as a read fetches them (``_level_columns`` returns them in this order).
_LEVEL_COLUMNS = (
    "bucket, n, first_step, last_step, min_step, min_value, max_step, max_value, "
    "min_time, min_tokens, max_time, max_tokens"
)


def _level_columns(
    conn: Connection, sid: int, att: int, level: int, b0: int | None = None, b1: int | None = None
) -> list[list[Any]]:
    """One level's rows (in [b0, b1] when given) as 12 column lists, in bucket order: the read
    works on whole columns with builtins (min, index, slices), not a Python object per bucket."""
    sql = (
        f"SELECT {_LEVEL_COLUMNS} FROM metric_levels "
        "WHERE series_id = %s AND attempt = %s AND level = %s"
    )
    params: list[Any] = [sid, att, level]
    if b0 is not None and b1 is not None:
        sql += " AND bucket >= %s AND bucket <= %s"
        params += [b0, b1]
    rows = query(conn, sql + " ORDER BY bucket", params)
    return [list(col) for col in zip(*rows, strict=True)] if rows else []


def window_points(
    conn: Connection, sid: int, att: int, lo: int | None, hi: int | None, max_points: int
) -> Columns:
    """At most ``max_points`` points of one series and attempt in [lo, hi]: first, last, and the
    min and max of each of ~max_points/2 step ranges (a spike survives any zoom level)."""
    top = _level_columns(conn, sid, att, TOP)
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
        return _thinned(conn, sid, att, lo, hi, max_points)
    # Each bucket gives its min and max, plus the range's first and last point: the finest level
    # with at most (max_points - 2) / 2 buckets in the range (more than a quarter of max_points,
    # the level below having too many).
    half = max(1, (max_points - 2) // 2)
    level = next((k for k in LEVELS if (hi >> k) - (lo >> k) + 1 <= half), TOP)
    cols = _level_columns(conn, sid, att, level, lo >> level, hi >> level)
    if not cols or sum(cols[1]) <= RAW_FACTOR * max_points:
        return _thinned(conn, sid, att, lo, hi, max_points)
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
            one = _points(conn, sid, att, step, step)
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
    steps, vals, times, tokens = _arrays(conn, sid, att, max(lo, cols[2][i]), min(hi, cols[3][i]))
    if not steps:
        return False
    a, b = vals.index(min(vals)), vals.index(max(vals))
    cols[2][i], cols[3][i] = steps[0], steps[-1]
    cols[4][i], cols[5][i], cols[8][i], cols[9][i] = (
        steps[a],
        vals[a],
        _none(times[a]),
        _none(tokens[a]),
    )
    cols[6][i], cols[7][i], cols[10][i], cols[11][i] = (
        steps[b],
        vals[b],
        _none(times[b]),
        _none(tokens[b]),
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
