"""Read side: metric series, raw events and log text of a run."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from backend.models import LogChunk, Run, RunEvent
from backend.services import metric_store


def metric_series(
    session: Session,
    run: Run,
    keys: list[str] | None,
    step_min: int | None,
    step_max: int | None,
    max_points: int,
    attempt: int | None,
) -> dict[str, Any]:
    """Read from the metrics store (metric_store.py): O(max_points) rows per key."""
    return metric_store.read(
        session.connection(), run.id, keys, step_min, step_max, max_points, attempt
    )


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
