"""Reading and writing an attempt's (or a job's) files: the panel's own log lines and the tail of
a log or events file. One place for runs and jobs, local and Slurm."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

#: How much of a file's end is read to find its last error line or end event.
TAIL_BYTES = 64 * 1024


def note(log_path: Path, text: str) -> None:
    """A line of the panel's own in a log (shipped like the tool's output)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(f"[cpt-panel] {text}\n")


def tail(path: Path, max_bytes: int = TAIL_BYTES) -> str | None:
    """The last ``max_bytes`` of a file as text (None: unreadable or missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


_ERROR_LINE = re.compile(r"([A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*|.*\berror\b.*)", re.I)


def last_error_line(log_path: Path, max_bytes: int = TAIL_BYTES) -> str | None:
    """The last line of the log that looks like an error (torchrun's summary skipped)."""
    text = tail(log_path, max_bytes)
    for line in reversed((text or "").splitlines()):
        line = re.sub(r"^\[rank\d+\]:\s*", "", line.strip())
        if not line or "ChildFailedError" in line or line.startswith(("error_file", "traceback")):
            continue
        if _ERROR_LINE.fullmatch(line):
            return line[:300]
    return None


def last_end_event(events_path: Path, max_bytes: int = TAIL_BYTES) -> dict[str, Any] | None:
    """The newest ``end`` event in events.jsonl (when the API could not be told of it)."""
    text = tail(events_path, max_bytes)
    for line in reversed((text or "").splitlines()):
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("kind") == "end":
                return event
    return None
