"""Atomic output directories: build next to the target, rename into place at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from worker.tokenizer.errors import TokenizerInputError


def check_new_output(path: Path, argument: str = "--output") -> Path:
    """The output path, resolved; it must not exist yet and its parent must be writable."""
    target = Path(path).expanduser().absolute()
    if target.exists() or target.is_symlink():
        raise TokenizerInputError(
            argument, f"{path} already exists; choose a new directory or remove it first"
        )
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise TokenizerInputError(argument, f"{parent} is not a directory")
    return target


@contextlib.contextmanager
def atomic_output_dir(path: Path, argument: str = "--output") -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success it is renamed to ``path``.

    On any exception the temporary directory is removed, so ``path`` never holds a
    half-written result.
    """
    target = check_new_output(path, argument)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():  # appeared while we worked: never replace someone else's result
            raise TokenizerInputError(argument, f"{path} appeared while it was being written")
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
