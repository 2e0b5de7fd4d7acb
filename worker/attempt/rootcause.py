"""The first failing rank of an attempt, from torch elastic's own account.

When a rank dies, the others soon fail too (rank 0's gloo "Connection reset by peer"), and
rank 0's ``end`` event names that secondary error. torchrun's summary names the root cause
("Root Cause (first observed failure): … rank: 1 … exitcode: -9 … (SIGKILL)"); with
``pretrain.main`` wrapped in ``errors.record`` a Python exception's traceback is in it too.
torchrun writes its own failure to ``TORCHELASTIC_ERROR_FILE`` (one per attempt) when it has
one. The reason becomes "rank 1: killed by SIGKILL" or "rank 1: <its own failure note>".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from worker.attempt.files import tail

_BLOCK = re.compile(r"Root Cause \(first observed failure\):\s*\n(?P<body>(?:.*\n?){0,40})")
_FIELD = re.compile(r"^\s*(?P<key>rank|exitcode|traceback)\s*:\s*(?P<value>.*)$", re.M)


@dataclass(frozen=True)
class RootCause:
    rank: int
    exitcode: int
    signal: str | None  # "SIGKILL" when the rank was killed by a signal
    detail: str  # torchrun's traceback line

    def describe(self, note: str | None = None) -> str:
        if note:
            return f"rank {self.rank}: {note}"
        if self.signal:
            return f"rank {self.rank}: killed by {self.signal} (exit code {self.exitcode})"
        return f"rank {self.rank}: exit code {self.exitcode}: {self.detail}"[:500]


def from_log(log_path: Path, max_bytes: int = 64 * 1024) -> RootCause | None:
    text = tail(log_path, max_bytes)
    if text is None:
        return None
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        return None
    body = blocks[-1]["body"].split("=" * 20)[0]  # up to the summary's closing line
    fields = {m["key"]: m["value"].strip() for m in _FIELD.finditer(body)}
    if fields.get("traceback", "").startswith("Traceback"):
        # A Python exception (``errors.record``): its last line says what it was.
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        fields["traceback"] = lines[-1] if lines else fields["traceback"]
    rank = re.match(r"-?\d+", fields.get("rank", ""))
    code = re.match(r"-?\d+", fields.get("exitcode", ""))
    if rank is None or code is None:
        return None
    sig = re.search(r"\((SIG[A-Z]+)\)", fields.get("exitcode", ""))
    return RootCause(
        int(rank[0]), int(code[0]), sig[1] if sig else None, fields.get("traceback", "")
    )


def rank_note(output_dir: Path, rank: int, since: float) -> str | None:
    """The failure a non-zero rank wrote itself (``worker.training.failures``) this attempt."""
    path = output_dir / f".rank-{rank}-failure.json"
    try:
        if path.stat().st_mtime < since:
            return None
        return str(json.loads(path.read_text())["reason"])
    except (OSError, ValueError, KeyError):
        return None
