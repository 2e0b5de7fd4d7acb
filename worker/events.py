"""Append-only writer of ``<output_dir>/events.jsonl`` (the contract in docs/architecture.md).

Only rank 0 writes. Each line is one JSON object, flushed (and fsynced) as soon as it is written,
so the worker's shipper can tail the file while training runs. ``seq`` continues from the
highest ``seq`` already in the file: a resumed run appends, it never rewrites.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"
#: Equal to ``cpt_contract.events.KINDS`` and ``PHASES`` (this script imports nothing of the
#: panel; tests/contract/test_events.py checks).
KINDS = ("start", "log", "eval", "checkpoint", "end", "sample", "warning", "phase", "stage")
#: What a ``phase`` event's ``phase`` field says the script is doing from then on.
PHASES = ("preparing_data", "loading_model", "training", "evaluating", "saving")
END_STATUSES = (
    "succeeded",
    "failed",
    "diverged",
    "oom",
    "disk_full",
    "cancelled",
    "preempted",
)


def last_seq(path: Path) -> int:
    """The highest ``seq`` in an events file (0 when absent). Ignores a torn last line."""
    if not path.exists():
        return 0
    best = 0
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                seq = json.loads(line).get("seq")
            except (json.JSONDecodeError, AttributeError):
                continue  # a line cut by a crash mid-write
            if isinstance(seq, int) and seq > best:
                best = seq
    return best


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays parseable."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    """Writes events for one process; a no-op unless ``enabled`` (rank 0)."""

    def __init__(self, output_dir: Path | str, enabled: bool = True) -> None:
        self.path = Path(output_dir) / EVENTS_FILE
        self.enabled = enabled
        # Re-entrant: the SIGTERM handler runs on the main thread, possibly inside emit().
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._seq = 0
        self.ended = False

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._seq = last_seq(self.path)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o644)
        return self._fd

    def _append(self, fd: int, line: bytes) -> None:
        """The whole line or nothing: a write cut short (a full disk) is undone, so the file
        never holds half a line that the next event would run into."""
        start = os.lseek(fd, 0, os.SEEK_END)
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise

    def emit(self, kind: str, step: int, **fields: Any) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        with self._lock:
            if self.ended:
                return None  # exactly one end event per process
            fd = self._open()
            event = {"seq": self._seq + 1, "time": time.time(), "kind": kind, "step": int(step)}
            event.update(_clean(fields))
            self._append(fd, (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))
            self._seq += 1
            with contextlib.suppress(OSError):
                os.fsync(fd)
            if kind == "end":
                self.ended = True
            return event

    def end(self, status: str, reason: str, step: int, **fields: Any) -> dict[str, Any] | None:
        if status not in END_STATUSES:
            raise ValueError(f"unknown end status {status!r}")
        one_line = " ".join(str(reason).split())[:1000]
        return self.emit("end", step, status=status, reason=one_line, **fields)

    def phase(self, name: str, step: int, **fields: Any) -> dict[str, Any] | None:
        """Mark the start of a phase; it lasts until the next ``phase`` or ``end`` event."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        return self.emit("phase", step, phase=name, **fields)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
