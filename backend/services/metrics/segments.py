"""The points of a series: per series (a run's key) and attempt, runs of up to ``SEGMENT_POINTS``
consecutive points as packed little-endian columns (steps int32; values, times, tokens float64,
NaN = none). A batch writes one row per key; the last segment grows in place while small.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from sqlalchemy import Connection

from backend.core.dbapi import dialect_insert, query
from backend.models import MetricSeries
from backend.services.downsample import minmax_indices
from cpt_contract.limits import INT32

#: Points per full segment: a segment row stays a few pages (512 x 28 bytes), and a chart's
#: zoomed edge or a range's first and last point read one or two of them.
SEGMENT_POINTS = 512
#: A series' last segment takes in the next batch's points only while it holds fewer than
#: this: small batches (a slow run ships a few steps every half second) still make segments of
#: 128+ points, and big ones are written once, not rewritten as the tail grows.
SEGMENT_GROW = 128
NONE = float("nan")  # "no time / no tokens" inside a float64 column
_SWAP = sys.byteorder != "little"  # segments are little-endian on every machine
assert array("i").itemsize == 4 and array("d").itemsize == 8

_T_SERIES: Any = MetricSeries.__table__  # type: ignore[attr-defined]

Point = tuple[int, float, float, float]  # step, value, time, tokens (NaN = none)
Columns = dict[str, list[Any]]


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
        stmt = dialect_insert(conn, _T_SERIES).on_conflict_do_nothing(
            index_elements=["run_id", "key"]
        )
        conn.execute(stmt, [{"run_id": run_id, "key": k} for k in missing])
        ids.update({k: int(i) for k, i in query(conn, sql, (run_id,)) if k in want})
    return ids


def merge(
    conn: Connection,
    sid: int,
    att: int,
    new: list[Point],
    drops: list[tuple[int, int, int]],
    out: list[tuple[Any, ...]],
) -> list[Point]:
    """Queue the segment rows that add ``new`` (sorted, unique steps) to a series; returns the
    points that were not stored yet (a step already stored keeps its first value)."""
    tail = query(conn, TAIL_SQL, (sid, att))
    if not tail or new[0][0] > tail[0][1]:
        # The usual case: steps past everything stored. A tail with room grows in place.
        added, merged = new, new
        if tail and tail[0][2] < SEGMENT_GROW:
            merged = decode(tail[0]) + new
            drops.append((sid, att, tail[0][0]))
    else:
        # Out of order or a repeat (a resend after a lost answer, a log and an eval at one
        # step in two batches): merge with the segments the new steps fall among.
        segs = query(conn, OVERLAP_SQL, (sid, att, new[-1][0], sid, att, new[0][0], MIN_STEP))
        stored = [p for seg in segs for p in decode(seg)]
        have = {p[0] for p in stored}
        added = [p for p in new if p[0] not in have]
        if not added:
            return []
        drops += [(sid, att, seg[0]) for seg in segs]
        merged = sorted(stored + added)
    for i in range(0, len(merged), SEGMENT_POINTS):
        out.append(encode(sid, att, merged[i : i + SEGMENT_POINTS]))
    return added


def pack(code: str, xs: Iterable[Any]) -> bytes:
    arr = array(code, xs)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def unpack(code: str, blob: bytes) -> array[Any]:
    arr = array(code)
    arr.frombytes(blob)
    if _SWAP:
        arr.byteswap()
    return arr


def encode(sid: int, att: int, pts: list[Point]) -> tuple[Any, ...]:
    steps, vals, times, tokens = zip(*pts, strict=True)
    return (sid, att, steps[0], steps[-1], len(pts), pack("i", steps), pack("d", vals),
            pack("d", times), pack("d", tokens))  # fmt: skip


def decode(seg: Sequence[Any]) -> list[Point]:
    cols = (unpack("i", seg[3]), unpack("d", seg[4]), unpack("d", seg[5]), unpack("d", seg[6]))
    return list(zip(*cols, strict=True))


MIN_STEP = -INT32 - 1
SEG_COLS = "first_step, last_step, n, steps, vals, times, tokens"
TAIL_SQL = (
    f"SELECT {SEG_COLS} FROM metric_segments WHERE series_id = %s AND attempt = %s "
    "ORDER BY first_step DESC LIMIT 1"
)
# Segments with a step in [lo, hi]: from the one that starts at or before lo (or the first).
OVERLAP_SQL = (
    f"SELECT {SEG_COLS} FROM metric_segments WHERE series_id = %s AND attempt = %s "
    "AND first_step <= %s AND first_step >= COALESCE((SELECT first_step FROM metric_segments "
    "WHERE series_id = %s AND attempt = %s AND first_step <= %s ORDER BY first_step DESC "
    "LIMIT 1), %s) ORDER BY first_step"
)
DROP_SQL = "DELETE FROM metric_segments WHERE series_id = %s AND attempt = %s AND first_step = %s"
SEGMENT_SQL = (
    "INSERT INTO metric_segments (series_id, attempt, first_step, last_step, n, steps, vals, "
    "times, tokens) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def none(x: float) -> float | None:
    return None if x != x else x


_Arrays: TypeAlias = "tuple[array[int], array[float], array[float], array[float]]"


def arrays(conn: Connection, sid: int, att: int, lo: int, hi: int) -> _Arrays:
    """Every point in [lo, hi] as packed columns (steps, values, times, tokens; NaN = none),
    from the segments that hold them: C-speed copies, no Python object per point."""
    steps, vals, times, tokens = array("i"), array("d"), array("d"), array("d")
    for seg in query(conn, OVERLAP_SQL, (sid, att, hi, sid, att, lo, MIN_STEP)):
        s = unpack("i", seg[3])
        i, j = bisect_left(s, lo), bisect_right(s, hi)
        if i >= j:
            continue
        steps += s[i:j]
        vals += unpack("d", seg[4])[i:j]
        times += unpack("d", seg[5])[i:j]
        tokens += unpack("d", seg[6])[i:j]
    return steps, vals, times, tokens


def columns(cols: _Arrays, idx: list[int] | None = None) -> Columns:
    """The answer's lists: all points, or those at ``idx``."""
    steps, vals, times, tokens = cols
    if idx is None:
        # NaN -> None inline: a call per point would double the cost of a full history.
        return {"step": steps.tolist(), "value": vals.tolist(),
                "time": [None if x != x else x for x in times],
                "tokens_seen": [None if x != x else x for x in tokens]}  # fmt: skip
    return {"step": [steps[i] for i in idx], "value": [vals[i] for i in idx],
            "time": [none(times[i]) for i in idx], "tokens_seen": [none(tokens[i]) for i in idx]}  # fmt: skip


def points(conn: Connection, sid: int, att: int, lo: int, hi: int) -> Columns:
    """Every point in [lo, hi]."""
    return columns(arrays(conn, sid, att, lo, hi))


def thinned(conn: Connection, sid: int, att: int, lo: int, hi: int, max_points: int) -> Columns:
    """The points in [lo, hi], thinned exactly to ``max_points`` (first, last, min and max)."""
    cols = arrays(conn, sid, att, lo, hi)
    if len(cols[0]) <= max_points:
        return columns(cols)
    return columns(cols, minmax_indices(cols[1], max_points))
