"""The levels: for each k in ``LEVELS``, one row per bucket ``step >> k`` of a series and attempt,
holding the count, the first and last step, the last value, and the min and the max points
(step, value, time, tokens). Folded from a batch's new points in bulk, each level from the one
below; what a downsampled read answers from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from backend.core.dbapi import execute, executemany, query
from backend.services.metrics.segments import MIN_STEP, SEG_COLS, Point, decode, none

#: Bucket widths 2^k, every k: a read can pick a level with between a quarter and a half of
#: max_points buckets and keep each bucket's min and max as they are (no grouping of buckets,
#: and at most max_points / 2 level rows read: the rows' column values are the query's cost).
#: Ranges of up to ``RAW_FACTOR`` x max_points steps are thinned from the points themselves, so
#: the finest level can be coarse (a 200-step batch touches ~15 level rows per key).
LEVELS = tuple(range(8, 21))
RAW_FACTOR = 2 ** LEVELS[0] // 4
TOP = LEVELS[-1]

# An aggregate, one bucket of one level while it is folded: a list, with its fields at these
# positions (a list, not an object: the fold runs per point of every ingest batch).
BUCKET, N, FIRST_STEP, LAST_STEP, LAST_VALUE = 0, 1, 2, 3, 4
MIN_AT, MIN_VALUE, MAX_AT, MAX_VALUE = 5, 6, 7, 8  # the min's and the max's steps and values
MIN_TIME, MIN_TOKENS, MAX_TIME, MAX_TOKENS = 9, 10, 11, 12


def _pick(cond: str, col: str) -> str:
    return f"{col} = CASE WHEN {cond} THEN excluded.{col} ELSE metric_levels.{col} END"


_LOWER = "excluded.min_value < metric_levels.min_value"
_HIGHER = "excluded.max_value > metric_levels.max_value"
# Every SET expression sees the row as it was before the update (SQLite and PostgreSQL).
LEVELS_SQL = (
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


def fold(fresh: list[tuple[int, int, list[Point]]]) -> list[tuple[Any, ...]]:
    """Level rows for a batch's new points: the finest level from the points, each next one
    from the level below. Points come in step order, so a bucket's points are adjacent."""
    out: list[tuple[Any, ...]] = []
    for sid, att, pts in fresh:
        k0 = LEVELS[0]
        aggs: list[list[Any]] = []
        cur: list[Any] | None = None
        for step, value, t, k in pts:
            b = step >> k0
            if cur is None or cur[BUCKET] != b:
                cur = [b, 1, step, step, value, step, value, step, value, t, k, t, k]
                aggs.append(cur)
                continue
            cur[N] += 1
            cur[LAST_STEP], cur[LAST_VALUE] = step, value
            if value < cur[MIN_VALUE]:
                cur[MIN_AT], cur[MIN_VALUE], cur[MIN_TIME], cur[MIN_TOKENS] = step, value, t, k
            if value > cur[MAX_VALUE]:
                cur[MAX_AT], cur[MAX_VALUE], cur[MAX_TIME], cur[MAX_TOKENS] = step, value, t, k
        prev = LEVELS[0]
        for level in LEVELS:
            if level != prev:
                aggs, prev = _coarser(aggs, level - prev), level
            out += [
                (sid, att, level, *a[:MIN_TIME], none(a[MIN_TIME]), none(a[MIN_TOKENS]),
                 none(a[MAX_TIME]), none(a[MAX_TOKENS]))
                for a in aggs
            ]  # fmt: skip
    return out


def _coarser(aggs: list[list[Any]], shift: int) -> list[list[Any]]:
    """The next level's aggregates from this level's (``shift`` more bits of bucket)."""
    merged: list[list[Any]] = []
    m: list[Any] | None = None
    for a in aggs:
        b = a[BUCKET] >> shift
        if m is None or m[BUCKET] != b:
            m = [b, *a[N:]]
            merged.append(m)
            continue
        m[N] += a[N]
        m[LAST_STEP], m[LAST_VALUE] = a[LAST_STEP], a[LAST_VALUE]
        if a[MIN_VALUE] < m[MIN_VALUE]:
            m[MIN_AT], m[MIN_VALUE], m[MIN_TIME], m[MIN_TOKENS] = (
                a[MIN_AT], a[MIN_VALUE], a[MIN_TIME], a[MIN_TOKENS]
            )  # fmt: skip
        if a[MAX_VALUE] > m[MAX_VALUE]:
            m[MAX_AT], m[MAX_VALUE], m[MAX_TIME], m[MAX_TOKENS] = (
                a[MAX_AT], a[MAX_VALUE], a[MAX_TIME], a[MAX_TOKENS]
            )  # fmt: skip
    return merged


#: Segments read per round trip while rebuilding the levels (bounded memory on any run).
_REBUILD_SEGMENTS = 64


def rebuild_levels(conn: Connection) -> None:
    """Every series' levels made anew from its segments, through the fold ingest uses: what a
    migration that changes ``LEVELS`` runs, so moved runs hold exactly what ingest writes."""
    execute(conn, "DELETE FROM metric_levels", ())
    pairs = query(conn, "SELECT DISTINCT series_id, attempt FROM metric_segments", ())
    sql = (
        f"SELECT {SEG_COLS} FROM metric_segments WHERE series_id = %s AND attempt = %s "
        "AND first_step > %s ORDER BY first_step LIMIT %s"
    )
    for sid, att in pairs:
        after = MIN_STEP - 1
        while segs := query(conn, sql, (sid, att, after, _REBUILD_SEGMENTS)):
            points = [p for seg in segs for p in decode(seg)]
            executemany(conn, LEVELS_SQL, fold([(int(sid), int(att), points)]))
            after = segs[-1][0]


#: A level row's columns as a read fetches them (``_level_columns`` returns them in this order).
_LEVEL_COLUMNS = (
    "bucket, n, first_step, last_step, min_step, min_value, max_step, max_value, "
    "min_time, min_tokens, max_time, max_tokens"
)


def level_columns(
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
