"""Read side: metric series, raw events and log text of a run."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.models import LogChunk, Run, RunEvent
from backend.services.downsample import minmax_indices

#: Bookkeeping fields of an event that are not metrics.
#: Event fields that are no metric: identity, and the timing the speed is computed from.
NON_METRICS = frozenset(
    {"seq", "time", "step", "kind", "attempt", "interval_steps", "train_seconds", "seconds"}
)
METRIC_KINDS = ("log", "eval")


class _Row(NamedTuple):
    kind: str
    attempt: int
    step: int | None
    time: float | None
    data: dict[str, Any]


def _effective(rows: list[_Row]) -> list[_Row]:
    """Across resumes: drop an attempt's events past the step where the next attempt resumed."""
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
        # An event at the resume step itself belongs to the earlier attempt.
        out += [r for r in by_attempt[a] if cut is None or r.step is None or r.step <= cut]
    return out


def metric_series(
    session: Session,
    run: Run,
    keys: list[str] | None,
    step_min: int | None,
    step_max: int | None,
    max_points: int,
    attempt: int | None,
) -> dict[str, Any]:
    # Plain columns, not ORM objects: building 10^4 model instances dominated the query.
    # "start" rows mark where a resumed attempt picked up (see _effective); they are no metrics.
    t = RunEvent.__table__.c  # type: ignore[attr-defined]
    stmt = sa_select(t.kind, t.attempt, t.step, t.time, t.data).where(
        t.run_id == run.id, t.kind.in_((*METRIC_KINDS, "start"))
    )
    if attempt is not None:
        stmt = stmt.where(t.attempt == attempt)
    ordered = stmt.order_by(t.attempt, t.seq)
    rows = [_Row(*r) for r in session.connection().execute(ordered)]
    if attempt is None:
        rows = _effective(rows)

    found: dict[str, None] = {}  # insertion-ordered set
    wanted = set(keys) if keys else None
    series: dict[str, dict[str, list[Any]]] = {}
    tokens_seen: Any = None
    #: Where each resumed attempt picked up: the charts draw a vertical line there.
    boundaries: list[dict[str, Any]] = []
    for r in rows:
        if r.kind == "start":
            if r.attempt > 1 and r.step is not None:
                per_step = r.data.get("tokens_per_step")
                tokens = r.step * per_step if isinstance(per_step, int) else None
                boundaries.append({"attempt": r.attempt, "step": r.step, "tokens_seen": tokens})
            continue
        data = r.data
        seen = data.get("tokens_seen")
        if isinstance(seen, int | float):
            tokens_seen = seen  # eval events borrow the last log's count
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
    return {"series": out, "keys": list(found), "attempts": boundaries}


def events_after(session: Session, run_id: str, after_seq: int, limit: int) -> list[RunEvent]:
    return list(
        session.exec(
            select(RunEvent)
            .where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
            .order_by(col(RunEvent.seq), col(RunEvent.attempt))
            .limit(limit)
        ).all()
    )


def _complete_utf8(data: bytes) -> bytes:
    """Drop a multi-byte character cut at the end (the next read starts with it)."""
    for cut in range(min(3, len(data)) + 1):
        try:
            (data[: len(data) - cut] if cut else data).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return data[: len(data) - cut] if cut else data
    return data


def log_slice(
    session: Session, run_id: str, attempt: int, offset: int, limit: int, tail: int | None
) -> dict[str, Any]:
    base = select(LogChunk).where(LogChunk.run_id == run_id, LogChunk.attempt == attempt)
    last = session.exec(base.order_by(col(LogChunk.offset).desc()).limit(1)).first()
    size = last.offset + last.length if last else 0
    if tail is not None:
        # Walk back from the end until enough lines are collected.
        parts: list[bytes] = []
        lines = 0
        for chunk in session.exec(base.order_by(col(LogChunk.offset).desc())):
            parts.append(chunk.text.encode())
            lines += chunk.text.count("\n")
            if lines > tail:
                break
        blob = b"".join(reversed(parts))
        text_lines = blob.decode("utf-8", errors="replace").splitlines(keepends=True)[-tail:]
        text = "".join(text_lines) if tail > 0 else ""
        return {
            "attempt": attempt,
            "offset": size - len(text.encode()),
            "next_offset": size,
            "size": size,
            "text": text,
        }
    chunks = session.exec(
        base.where(
            LogChunk.offset + LogChunk.length > offset, LogChunk.offset < offset + limit
        ).order_by(col(LogChunk.offset))
    ).all()
    blob = b""
    start = offset
    if chunks:
        start = max(offset, chunks[0].offset)
        blob = b"".join(c.text.encode() for c in chunks)[start - chunks[0].offset :]
    blob = _complete_utf8(blob[:limit])
    return {
        "attempt": attempt,
        "offset": start,
        "next_offset": start + len(blob),
        "size": size,
        "text": blob.decode("utf-8", errors="replace"),
    }
