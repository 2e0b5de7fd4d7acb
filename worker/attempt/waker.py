"""Sleep until the training process exits, another thread (or a signal handler) asks, or a
timeout: the watch loop wakes twice a second instead of twenty times, and still sees the
training's exit and a cancel at once.

The process's exit is a pidfd (Linux 5.3+) becoming readable; a wake-up is a byte on a pipe.
Without pidfd the wait is capped at 50 ms (the old polling)."""

from __future__ import annotations

import contextlib
import os
import select
import weakref

#: The longest sleep when the exit cannot be waited for (no pidfd).
POLL_SECONDS = 0.05


class Waker:
    def __init__(self, pid: int) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # a full pipe already means "wake up"
        # The pipe closes when the last reference goes, never under a wake() in another
        # thread (which holds one): a closed descriptor's number may be reused by any file.
        weakref.finalize(self, _close, self._read, self._write)
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):  # an old kernel, or the process is gone already
            self._pidfd = None

    def wait(self, timeout: float) -> None:
        """Return after ``timeout`` s, at the process's exit, or at ``wake()``."""
        fds = [self._read] if self._pidfd is None else [self._read, self._pidfd]
        if self._pidfd is None:
            timeout = min(timeout, POLL_SECONDS)
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        if self._read in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._read, 4096)

    def wake(self) -> None:
        """Safe from any thread and from a signal handler."""
        with contextlib.suppress(OSError):
            os.write(self._write, b"!")

    def close(self) -> None:
        """Stop watching the process (the pipe goes with the object)."""
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
