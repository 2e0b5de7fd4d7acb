"""Every data file is opened here: a regular file, under the roots the worker handed down.

The worker checks a run's or a job's paths before it starts the program, but a file can be
swapped for a link (or a FIFO) after that check; so each open is checked again on the opened
descriptor (``cpt_contract.roots.open_regular``). Run by hand, with no roots in the
environment, only the regular-file rule applies.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import IO

from cpt_contract.roots import PathRefused, Roots, open_regular


def open_data(path: Path | str) -> IO[bytes]:
    """``open(path, "rb")``, refused with a ``PermissionError`` (an ``OSError``, which every
    reader already reports with the file's name) when the file may not be read."""
    try:
        return open_regular(path, Roots.from_env())
    except PathRefused as exc:
        raise PermissionError(errno.EACCES, str(exc), str(path)) from None
