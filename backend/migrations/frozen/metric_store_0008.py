"""The metrics store's write path as migrations 0007 and 0008 ran it, frozen here.

A migration must do tomorrow what it did the day it was written: it never imports the live
``backend/services/metric_store.py``, whose layout and levels move on. The levels to fold are
the caller's argument (0007's release kept every other k, 0008's every k). Plain DB-API SQL,
no model classes.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection

#: Bookkeeping fields of an event that are not metrics.
NON_METRICS = frozenset(
    {"seq", "time", "step", "kind", "attempt", "interval_steps", "train_seconds", "seconds"}
)
#: Event kinds whose numeric fields are metrics; "start" only marks where an attempt begins.
METRIC_KINDS = ("log", "eval")
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


class Ev(NamedTuple):
    """What the store needs of one event (the raw row stays in ``run_events``)."""

    attempt: int
    kind: str
    step: int | None
    time: float | None
    data: dict[str, Any]


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
        executemany(
            conn,
            "INSERT INTO metric_series (run_id, key) VALUES (%s, %s) "
            "ON CONFLICT (run_id, key) DO NOTHING",
            [(run_id, k) for k in missing],
        )
        ids.update({k: int(i) for k, i in query(conn, sql, (run_id,)) if k in want})
    return ids


Point = tuple[int, float, float, float]  # step, value, time, tokens (NaN = none)


def add_events(
    conn: Connection,
    run_id: str,
    events: Sequence[Ev],
    tokens_seen: float | None,
    levels: tuple[int, ...],
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
    executemany(conn, _LEVELS_SQL, _fold_levels(fresh, levels))
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


def _fold_levels(
    fresh: list[tuple[int, int, list[Point]]], levels: tuple[int, ...]
) -> list[tuple[Any, ...]]:
    """Level rows for a batch's new points: the finest level from the points, each next one
    from the level below.

    An aggregate is [bucket, n, first_step, last_step, last_value, min_step, min_value,
    max_step, max_value, min_time, min_tokens, max_time, max_tokens]; points come in step
    order, so a bucket's points are adjacent.
    """
    out: list[tuple[Any, ...]] = []
    for sid, att, pts in fresh:
        k0 = levels[0]
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
        prev = levels[0]
        for level in levels:
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


def rebuild_levels(conn: Connection, levels: tuple[int, ...]) -> None:
    """Every series' levels made anew from its segments, through the fold ingest uses: what a
    migration that changes the levels runs, so moved runs hold what ingest wrote then."""
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
            executemany(conn, _LEVELS_SQL, _fold_levels([(int(sid), int(att), points)], levels))
            after = segs[-1][0]


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
