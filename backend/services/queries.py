"""Read side: metric series, raw events and log text of a run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.models import LogChunk, Run, RunEvent
from backend.services.metrics import read as metric_read


def metric_series(
    session: Session,
    run: Run,
    keys: list[str] | None,
    step_min: int | None,
    step_max: int | None,
    max_points: int,
    attempt: int | None,
) -> dict[str, Any]:
    """Read from the metrics store (metrics/): O(max_points) rows per key."""
    out = metric_read.read(
        session.connection(), run.id, keys, step_min, step_max, max_points, attempt
    )
    out["attempts"] = attempt_starts(session, run)
    out["stages"] = stage_starts(session, run)
    return out


def stage_starts(session: Session, run: Run) -> list[dict[str, Any]]:
    """Where each stage of a staged run begins after the first (``stage`` events, placed at the
    stage's planned ``start`` step, so a resume inside a stage marks nothing new): the charts
    draw a vertical line there."""
    t = RunEvent.__table__.c  # type: ignore[attr-defined]
    stmt = sa_select(t.data).where(t.run_id == run.id, t.kind == "stage").order_by(t.seq)
    found: dict[int, dict[str, Any]] = {}
    for (data,) in session.connection().execute(stmt):
        event = data if isinstance(data, dict) else {}
        index, start = event.get("index"), event.get("start")
        if not isinstance(index, int) or not isinstance(start, int) or index < 1:
            continue
        per_step = run.tokens_per_step
        found[index] = {
            "index": index,
            "name": str(event.get("name") or ""),
            "method": str(event.get("method") or ""),
            "step": start,
            "tokens_seen": start * per_step if per_step else None,
        }
    return [found[i] for i in sorted(found)]


def attempt_starts(session: Session, run: Run) -> list[dict[str, Any]]:
    """Where each resumed attempt picked up (the metrics store's first step of each attempt):
    the charts draw a vertical line there. One row per attempt, whatever the run's length."""
    per_step = run.tokens_per_step
    return [
        {"attempt": att, "step": step, "tokens_seen": step * per_step if per_step else None}
        for att, step in metric_read.attempt_starts(session.connection(), run.id)
        if att > 1
    ]


def events_after(
    session: Session, run_id: str, after_seq: int, limit: int, kind: str | None = None
) -> list[RunEvent]:
    stmt = select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
    if kind is not None:
        stmt = stmt.where(RunEvent.kind == kind)
    return list(
        session.exec(stmt.order_by(col(RunEvent.seq), col(RunEvent.attempt)).limit(limit)).all()
    )


def samples(session: Session, run: Run, step: int | None) -> dict[str, Any]:
    """The run's generation samples (``sample`` events): every step that has some, and those of
    ``step`` (all steps when None). Across resumes, a step's samples from the latest attempt."""
    conn = session.connection()
    # Across resumes the metrics' cut: an attempt ends where the next one resumed.
    tops = {att: top for att, _, top in metric_read.windows(conn, run.id, None, None, None)}
    t = RunEvent.__table__.c  # type: ignore[attr-defined]
    stmt = sa_select(t.attempt, t.step, t.time, t.data).where(
        t.run_id == run.id, t.kind == "sample"
    )
    by_step: dict[int, list[dict[str, Any]]] = {}
    attempt_of: dict[int, int] = {}
    for attempt, at_step, time, d in conn.execute(stmt.order_by(t.attempt, t.seq)):
        top = tops.get(attempt)
        if at_step is None or (top is not None and at_step > top):
            continue
        if attempt_of.setdefault(at_step, attempt) != attempt:
            if attempt > attempt_of[at_step]:  # a resumed attempt evaluated this step again
                by_step[at_step], attempt_of[at_step] = [], attempt
            else:
                continue
        by_step.setdefault(at_step, []).append(
            {
                "seq": d.get("seq"),
                "step": at_step,
                "attempt": attempt,
                "time": time,
                "set": str(d.get("set", "")),
                "prompt": str(d.get("prompt", "")),
                "text": str(d.get("text", "")),
                "mode": str(d.get("mode", "")),
            }
        )
    steps = sorted(by_step)
    chosen = steps if step is None else [s for s in steps if s == step]
    return {"steps": steps, "samples": [x for s in chosen for x in by_step[s]]}


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
