"""Read side: metric series, raw events and log text of a run."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from backend.models import LogChunk, Run, RunEvent
from backend.services.downsample import minmax_indices

#: Bookkeeping fields of an event that are not metrics.
NON_METRICS = frozenset({"seq", "time", "step", "kind", "attempt"})
METRIC_KINDS = ("log", "eval")


def _effective(events: list[RunEvent]) -> list[RunEvent]:
    """Across resumes: drop an attempt's events past the step where the next attempt resumed."""
    by_attempt: dict[int, list[RunEvent]] = {}
    for e in events:
        by_attempt.setdefault(e.attempt, []).append(e)
    attempts = sorted(by_attempt)
    out: list[RunEvent] = []
    for i, a in enumerate(attempts):
        later_steps = [
            e.step for b in attempts[i + 1 :] for e in by_attempt[b] if e.step is not None
        ]
        cut = min(later_steps) if later_steps else None
        out += [e for e in by_attempt[a] if cut is None or e.step is None or e.step <= cut]
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
    stmt = select(RunEvent).where(RunEvent.run_id == run.id, col(RunEvent.kind).in_(METRIC_KINDS))
    if attempt is not None:
        stmt = stmt.where(RunEvent.attempt == attempt)
    events = list(session.exec(stmt.order_by(col(RunEvent.attempt), col(RunEvent.seq))).all())
    if attempt is None:
        events = _effective(events)

    found: list[str] = []
    series: dict[str, dict[str, list[Any]]] = {}
    tokens_seen: Any = None
    for e in events:
        data = e.data
        if isinstance(data.get("tokens_seen"), int | float):
            tokens_seen = data["tokens_seen"]  # eval events borrow the last log's count
        if e.step is None or (step_min is not None and e.step < step_min):
            continue
        if step_max is not None and e.step > step_max:
            continue
        for key, value in data.items():
            if key in NON_METRICS or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if key not in series:
                found.append(key)
                series[key] = {"step": [], "value": [], "tokens_seen": [], "time": []}
            s = series[key]
            s["step"].append(e.step)
            s["value"].append(value)
            s["tokens_seen"].append(tokens_seen)
            s["time"].append(e.time)
    wanted = [k for k in keys if k in series] if keys else found
    out: dict[str, dict[str, list[Any]]] = {}
    for key in wanted:
        s = series[key]
        idx = minmax_indices(s["value"], max_points)
        out[key] = {name: [column[i] for i in idx] for name, column in s.items()}
    return {"series": out, "keys": found}


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
