"""Whether the database can be written: what ``/api/health`` reports and the recovery loop heeds.

A full disk does not break reads, so ``SELECT 1`` kept saying ``database: ok`` while every
write failed. Instead, the engine's ``handle_error`` hook records each failed write here
(SQLite "database or disk is full", PostgreSQL ``DiskFull``, a read-only or I/O-failing file),
and a later successful write commit clears it. ``problem()`` is what health shows; the
recovery loop asks ``failed_within`` so that silence the database could not record is never
taken for a lost worker.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

#: Less free space than this where the SQLite file lives: writes are about to fail, so health is
#: ``degraded`` and user writes are refused up front (507) rather than accepted and lost.
LOW_DISK_BYTES = 1024 * 1024

#: Health stays ``degraded`` this long after the last failure even if a small write got
#: through meanwhile (a few free pages are not a disk with room again).
HOLD_SECONDS = 10.0

_STORAGE = ("disk is full", "no space left", "could not extend file", "diskfull", "disk full")
_WRITE = ("readonly database", "read-only", "disk i/o error", "unable to open database")


def is_storage_error(exc: BaseException) -> bool:
    """The database ran out of space (SQLite SQLITE_FULL, PostgreSQL SQLSTATE 53100, ENOSPC)."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) == "53100" or getattr(orig, "errno", None) == 28:
        return True
    text = str(orig).lower()
    return any(s in text for s in _STORAGE)


def is_write_failure(exc: BaseException) -> bool:
    """A failure that says the database cannot be written (not a busy lock or a bad value)."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return is_storage_error(exc) or any(s in text for s in _WRITE)


def describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).splitlines() or [type(orig).__name__])[0]
    return f"{'disk full' if is_storage_error(exc) else 'write failed'} ({first[:200]})"


@dataclass
class _State:
    failed_at: float | None = None
    problem: str | None = None
    ok_at: float | None = None


_state = _State()
_lock = threading.Lock()


def record_failure(exc: BaseException) -> None:
    with _lock:
        _state.failed_at, _state.problem = time.time(), describe(exc)


def record_write() -> None:
    with _lock:
        _state.ok_at = time.time()


def problem(now: float | None = None) -> str | None:
    """``database write failed N s ago: disk full (...)`` while the database looks unwritable."""
    now = time.time() if now is None else now
    with _lock:
        failed, ok, text = _state.failed_at, _state.ok_at, _state.problem
    if failed is None:
        return None
    if ok is not None and ok > failed and now - failed > HOLD_SECONDS:
        return None
    return f"database write failed {now - failed:.0f} s ago: {text}"


def failed_within(seconds: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    with _lock:
        return _state.failed_at is not None and now - _state.failed_at < seconds


def reset() -> None:
    with _lock:
        _state.failed_at = _state.problem = _state.ok_at = None


def watch(engine: Engine) -> None:
    """Record this engine's write failures (its ``handle_error`` hook)."""

    def on_error(context: Any) -> None:
        exc = context.original_exception
        if exc is not None and is_write_failure(exc):
            record_failure(exc)

    event.listen(engine, "handle_error", on_error)


# A commit that wrote something proves the database writable again. A session "wrote" when it
# flushed ORM changes or executed an INSERT/UPDATE/DELETE statement.
@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _ctx: Any) -> None:
    session.info["wrote"] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["wrote"] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop("wrote", False):
        record_write()


def low_disk(where: Path | None) -> str | None:
    """Why the database's volume is too full to take writes (None: it has room, or it is
    not a local file)."""
    if where is None:
        return None
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return None
    if free >= LOW_DISK_BYTES:
        return None
    return f"disk full: {free // 1024} KiB free where the database lives ({where})"


def storage_problem(where: Path | None) -> str | None:
    """What health reports and writes are refused for: a failed write, or a volume too full."""
    return problem() or low_disk(where)
