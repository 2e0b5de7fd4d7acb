"""The allowed roots: a user-supplied path, and every file inside it, must resolve under one,
be a regular file or a directory, and never reach the panel's own state.

Checking only the path the user typed is not enough: a dataset directory under ``/datasets``
may hold ``notes.txt -> /etc/shadow`` or ``more -> /``, and the training would read through it.
So a directory is walked, symlinks followed (loops cut), and every entry's real path must stay
under a root. The API checks before queuing and the worker again before it launches or runs a
job (a link may appear in between, and a remote box has its own roots); the readers then open
each file through ``open_regular``, which checks the opened descriptor itself, so a link swapped
in after those checks is refused too.

The panel's state (its data dir: keys, tokens, database, broker, caches) is never a user's
path, even when a root holds it: of the data dir, users may name only what they made there
(run outputs, job outputs such as extended tokenizers, the demo assets).

Stdlib only: the worker's readers, which import nothing else of the panel, use this module.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

#: More entries than this in one directory tree are refused rather than half-checked.
MAX_ENTRIES = 200_000
#: Linux's limits: a longer name or path is an error from every system call.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
#: The environment variables that hand a box's roots to the programs the worker starts.
ROOTS_ENV = "CPT_READ_ROOTS"
STATE_ENV = "CPT_READ_STATE"
SHARED_ENV = "CPT_READ_SHARED"


class PathRefused(ValueError):
    """A user's path that may not be used; the message says why and what to do."""


def is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Roots:
    """Where user paths may lead: ``allowed`` minus the panel's ``state`` dir, of which only
    the ``shared`` subdirectories are the users' (each path resolved)."""

    allowed: tuple[Path, ...]
    state: tuple[Path, ...] = ()
    shared: tuple[Path, ...] = field(default=())

    def __iter__(self) -> Iterator[Path]:
        return iter(self.allowed)

    def __len__(self) -> int:
        return len(self.allowed)

    def __str__(self) -> str:
        return ", ".join(map(str, self.allowed))

    def admits(self, real: str | Path) -> bool:
        """Whether a resolved path may be read as a user's file."""
        path = Path(real)
        if any(is_under(path, s) for s in self.state):
            return any(is_under(path, s) for s in self.shared)
        return any(is_under(path, root) for root in self.allowed)

    def why_not(self, shown: object, real: str | Path) -> str:
        if any(is_under(Path(real), s) for s in self.state):
            return (
                f"'{shown}' is inside the panel's own state ({real}): its keys, tokens, database "
                "and caches are never a model, tokenizer or dataset"
            )
        return f"'{shown}' resolves to '{real}', outside the allowed roots ({self})"

    def env(self) -> dict[str, str]:
        """The roots as environment variables, for ``from_env`` in a child process."""
        join = os.pathsep.join
        return {
            ROOTS_ENV: join(map(str, self.allowed)),
            STATE_ENV: join(map(str, self.state)),
            SHARED_ENV: join(map(str, self.shared)),
        }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Roots | None:
        """The roots a worker handed down, or None (a script run by hand: no limit)."""
        env = os.environ if environ is None else environ
        if not env.get(ROOTS_ENV):
            return None

        def paths(name: str) -> tuple[Path, ...]:
            return tuple(Path(p) for p in env.get(name, "").split(os.pathsep) if p)

        return cls(paths(ROOTS_ENV), paths(STATE_ENV), paths(SHARED_ENV))


def resolve_user_path(raw: str | Path, roots: Roots) -> Path:
    """The resolved absolute path of a user's value, or ``PathRefused`` saying why.

    No ``~`` expansion: a path is absolute, as the service that reads it sees it.
    """
    text = str(raw)
    if "\x00" in text:
        raise PathRefused("contains a NUL character: remove it")
    if not text.startswith("/"):
        raise PathRefused(
            f"'{raw}' is a relative path: use an absolute path under one of the allowed roots "
            f"({roots})"
        )
    encoded = os.fsencode(text)
    if len(encoded) > MAX_PATH_BYTES:
        raise PathRefused(f"the path is longer than {MAX_PATH_BYTES} bytes: use a shorter one")
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise PathRefused(
            f"'{text[:80]}…' has a name longer than {MAX_NAME_BYTES} bytes: rename it"
        )
    try:
        # strict=False: a missing path still resolves (its existence is checked separately).
        resolved = Path(text).resolve(strict=False)
    except (OSError, RuntimeError) as exc:
        raise PathRefused(f"'{raw}' cannot be resolved: {exc}") from None
    if not roots.admits(resolved):
        if any(is_under(resolved, s) for s in roots.state):
            raise PathRefused(roots.why_not(raw, resolved))
        raise PathRefused(
            f"'{raw}' is outside the allowed roots: use a path under {roots}, or add its "
            "parent to CPT_ALLOWED_ROOTS"
        )
    return resolved


def _kind_problem(shown: str, mode: int) -> str | None:
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    what = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"'{shown}' is {what}, not a regular file or a directory: point at files"


def escaping_entry(path: Path, roots: Roots, limit: int = MAX_ENTRIES) -> str | None:
    """Why ``path`` (already resolved) or something inside it leaves the roots, reaches the
    panel's state, or is no regular file or directory; else None."""
    real = os.path.realpath(path)
    if not roots.admits(real):
        return roots.why_not(path, real)
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        return f"cannot read '{path}': {exc.strerror}"
    if problem := _kind_problem(str(path), mode):
        return problem
    if not stat.S_ISDIR(mode):
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
            if not roots.admits(target):
                return (
                    f"'{entry}' is a link to '{target}', outside the allowed roots: "
                    "remove the link or copy the file under an allowed root"
                )
            try:
                entry_mode = os.stat(target).st_mode
            except OSError:
                continue  # a dangling link: nothing to read through it
            if problem := _kind_problem(entry, entry_mode):
                return problem
            if name in dirs and target not in seen:
                seen.add(target)
                keep.append(name)
        dirs[:] = [d for d in dirs if d in keep]  # a loop or a second link to a dir: once
    return None


def open_regular(path: str | Path, roots: Roots | None = None) -> IO[bytes]:
    """Open ``path`` for reading in binary, refusing (``PathRefused``) anything that is not a
    regular file or, with ``roots``, whose opened file lies outside them.

    The check is on the opened descriptor (its real path in ``/proc/self/fd``, its ``fstat``),
    so a link swapped in after an earlier check cannot redirect the read. ``O_NONBLOCK``: a
    FIFO must not block the open before it is refused.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        problem = _kind_problem(str(path), os.fstat(fd).st_mode)
        if problem is None and roots is not None:
            real = os.readlink(f"/proc/self/fd/{fd}")
            if not roots.admits(real):
                problem = roots.why_not(path, real)
        if problem:
            raise PathRefused(problem)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_user_path(raw: str | Path, roots: Roots) -> Path:
    """``resolve_user_path``, then every entry inside checked (``escaping_entry``): the one check
    the worker repeats before it starts anything on a user's paths."""
    path = resolve_user_path(raw, roots)
    if problem := escaping_entry(path, roots):
        raise PathRefused(problem)
    return path
