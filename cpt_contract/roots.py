"""The allowed roots: a user-supplied path, and every file inside it, must resolve under one.

Checking only the path the user typed is not enough: a dataset directory under ``/datasets``
may hold ``notes.txt -> /etc/shadow`` or ``more -> /``, and the training would read through it.
So a directory is walked, symlinks followed (loops cut), and every entry's real path must stay
under a root. The API checks before queuing and the worker again before it launches or runs a
job (a link may appear in between, and a remote box has its own roots).
"""

from __future__ import annotations

import os
from pathlib import Path

#: More entries than this in one directory tree are refused rather than half-checked.
MAX_ENTRIES = 200_000


def is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _inside(real: str, roots: list[Path]) -> bool:
    return any(is_under(Path(real), root) for root in roots)


def escaping_entry(path: Path, roots: list[Path], limit: int = MAX_ENTRIES) -> str | None:
    """Why ``path`` (already resolved) or something inside it leaves the roots, else None."""
    real = os.path.realpath(path)
    if not _inside(real, roots):
        return f"'{path}' resolves to '{real}', outside the allowed roots"
    if not os.path.isdir(real):
        return None
    seen = {real}
    count = 0
    for top, dirs, files in os.walk(real, followlinks=True):
        keep = []
        for name in (*dirs, *files):
            count += 1
            if count > limit:
                return f"'{path}' holds more than {limit} files: point at a smaller directory"
            entry = os.path.join(top, name)
            target = os.path.realpath(entry)
            if not _inside(target, roots):
                return (
                    f"'{entry}' is a link to '{target}', outside the allowed roots: "
                    "remove the link or copy the file under an allowed root"
                )
            if name in dirs and target not in seen:
                seen.add(target)
                keep.append(name)
        dirs[:] = [d for d in dirs if d in keep]  # a loop or a second link to a dir: once
    return None
