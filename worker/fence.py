"""The fence between an attempt's training and its worker: the worker touches a file while it
watches the attempt; the ranks stop, without saving, once it has gone untouched too long.

A worker frozen past the API's lost window (a stopped container, a host in swap) cannot stop
its ranks, which live in sessions of their own and kept training and writing checkpoints after
their attempt had been declared lost and handed to another worker. With the fence they stop
first: its window is shorter than the lost window, so two attempts of a run never train at
once. Stdlib only: the training script reads it too (``worker/training/fencing.py``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The environment the worker hands the ranks: the file, and how stale it may grow.
FILE_ENV = "CPT_FENCE_FILE"
SECONDS_ENV = "CPT_FENCE_SECONDS"
#: The fence's share of the API's lost window: the ranks stop well before the run is judged
#: lost (and so before another worker can start its next attempt), with room for a loaded box
#: (measured: 2 s from the fence's window to the last rank gone, on 2 busy cores).
SHARE_OF_LOST_WINDOW = 0.5


def touch(path: Path) -> None:
    """The worker is alive and watching (creates the file on first use)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def silence(path: str | Path) -> float | None:
    """Seconds since the worker last touched the fence (None: no fence there)."""
    try:
        return max(0.0, time.time() - os.stat(path).st_mtime)
    except FileNotFoundError:
        return None


@contextmanager
def kept(path: Path, every: float = 0.5) -> Iterator[None]:
    """Touch the fence from a thread while the worker waits on something else (the ranks
    saving a preemption checkpoint may take longer than the fence's window)."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every):
            touch(path)

    thread = threading.Thread(target=loop, name="fence", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
