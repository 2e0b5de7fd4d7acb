"""A batch of events into the store: each new metric point into its series' segments, and the
levels folded from them, in the transaction of the events themselves (ingest's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection

from backend.core.dbapi import executemany
from backend.services.metrics import levels
from backend.services.metrics.segments import (
    DROP_SQL,
    NONE,
    SEGMENT_SQL,
    Point,
    merge,
    series_ids,
)

#: Bookkeeping fields of an event that are not metrics.
NON_METRICS = frozenset(
    {"seq", "time", "step", "kind", "attempt", "interval_steps", "train_seconds", "seconds"}
)
#: Event kinds whose numeric fields are metrics; "start" only marks where an attempt begins.
METRIC_KINDS = ("log", "eval")


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


# Only an earlier step rewrites the row: on PostgreSQL an update that changes nothing still
# writes a new row version, once per batch.
_ATTEMPTS_SQL = (
    "INSERT INTO metric_attempts (run_id, attempt, first_step) VALUES (%s, %s, %s) "
    "ON CONFLICT (run_id, attempt) DO UPDATE SET first_step = excluded.first_step "
    "WHERE excluded.first_step < metric_attempts.first_step"
)


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
        when = NONE if ev.time is None else ev.time
        count = NONE if tokens_seen is None else tokens_seen
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
        if added := merge(conn, sid, att, new, drops, segments):
            fresh.append((sid, att, added))
    # Rewritten segments go first: a grown tail keeps its primary key.
    executemany(conn, DROP_SQL, drops)
    executemany(conn, SEGMENT_SQL, segments)
    executemany(conn, levels.LEVELS_SQL, levels.fold(fresh))
    return tokens_seen
