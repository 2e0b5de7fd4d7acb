"""Every process of one attempt: torchrun and each rank, whatever session they are in.

torch 2.13's torchrun starts each rank in its *own session*, so the launcher's process group
does not reach them, and a rank whose torchrun died is re-parented to pid 1. So the tree is
*recorded while alive* (psutil descendants of torchrun, each kept as (pid, create_time) so a
reused pid is never mistaken for ours), and the ranks also set PR_SET_PDEATHSIG themselves
(``worker.training.guards``) for the moment between a rank's start and the next refresh.

Stopping (``stop``): torchrun is frozen first (SIGSTOP) so it neither restarts ranks nor prints
its SignalException traceback into the log; the ranks get the signal (and SIGCONT, so a
stopped rank can handle it), then after the grace everything left gets SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable

import psutil

log = logging.getLogger(__name__)

Key = tuple[int, float]  # (pid, create_time): a pid alone may be reused


def _key(proc: psutil.Process) -> Key | None:
    try:
        return (proc.pid, proc.create_time())
    except psutil.Error:
        return None


def _living(keys: Iterable[Key]) -> list[psutil.Process]:
    out = []
    for pid, created in keys:
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) > 0.05:
                continue  # the pid was reused: not ours
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            out.append(proc)
        except psutil.Error:
            continue
    return out


#: Linux lists each thread's children in /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN,
#: on in the usual kernels). Walking those reads a few small files per process of the attempt;
#: psutil's ``children()`` reads the stat file of every process on the box, and doing that
#: every half second was a third of what the worker cost while a run trained.
_CHILDREN_LISTS = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (none once it is gone)."""
    if not _CHILDREN_LISTS:
        with contextlib.suppress(psutil.Error):
            return [c.pid for c in psutil.Process(pid).children()]
        return []
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out  # gone
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue  # that thread ended meanwhile
    return out


def _descendants(roots: Iterable[int]) -> list[int]:
    """``roots`` and every process below them, each once."""
    seen: list[int] = []
    todo = list(dict.fromkeys(roots))
    known = set(todo)
    while todo:
        pid = todo.pop()
        seen.append(pid)
        for child in _children(pid):
            if child not in known:
                known.add(child)
                todo.append(child)
    return seen


class ProcessTree:
    """The processes of one attempt, rooted at the launcher (torchrun)."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.keys: set[Key] = set()
        self.refresh()

    @classmethod
    def from_keys(cls, keys: Iterable[Iterable[float]]) -> ProcessTree:
        """A tree recorded by another process (a dead worker's registry record)."""
        tree = cls.__new__(cls)
        tree.root_pid = 0
        tree.keys = {(int(k[0]), float(k[1])) for k in (list(x) for x in keys) if len(k) == 2}
        return tree

    def refresh(self) -> bool:
        """Record the root's current descendants; True when a new process was seen."""
        before = len(self.keys)
        roots = [p.pid for p in _living(self.keys)]
        if self.root_pid > 0:
            roots.append(self.root_pid)
        for pid in _descendants(roots):
            with contextlib.suppress(psutil.Error):
                key = _key(psutil.Process(pid))
                if key:
                    self.keys.add(key)
        return len(self.keys) > before

    def alive(self) -> list[psutil.Process]:
        return _living(self.keys)

    def ranks(self) -> list[psutil.Process]:
        return [p for p in self.alive() if p.pid != self.root_pid]

    def send(self, sig: signal.Signals, procs: Iterable[psutil.Process] | None = None) -> None:
        for proc in self.alive() if procs is None else procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    def stop(
        self, grace: float, sig: signal.Signals = signal.SIGTERM, *, launcher: bool = True
    ) -> float:
        """``sig`` to every rank, SIGKILL to all after ``grace``; returns once none is left
        (the seconds it took). The launcher is frozen meanwhile and killed at the end.

        ``launcher=False``: the root is the program itself (a job's tool), not a launcher, so it
        gets ``sig`` like the rest and the grace waits for it too."""
        t0 = time.monotonic()
        self.refresh()
        root = [p for p in self.alive() if p.pid == self.root_pid]
        if launcher:
            self.send(signal.SIGSTOP, root)
        targets = self.ranks() if launcher else self.alive()
        self.send(sig, targets)
        self.send(signal.SIGCONT, targets)  # a stopped (hung) process must run to handle it
        waiting = self.ranks if launcher else self.alive
        deadline = t0 + grace
        while waiting() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.alive()
        if [p for p in left if p.pid != self.root_pid or not launcher]:
            log.warning("%d process(es) outlived the %.0f s grace: SIGKILL", len(left), grace)
        self.send(signal.SIGKILL, left)
        self.wait_gone(30.0)
        return time.monotonic() - t0

    def kill(self) -> None:
        self.refresh()
        self.send(signal.SIGKILL)

    def wait_gone(self, timeout: float) -> bool:
        """Wait (SIGKILLing again) until no process of the tree is left; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.alive()
            if not left:
                return True
            if time.monotonic() > deadline:
                log.error("still alive after SIGKILL: %s", [p.pid for p in left])
                return False
            self.send(signal.SIGKILL, left)
            time.sleep(0.05)

    def as_record(self) -> list[list[float]]:
        return [[pid, created] for pid, created in sorted(self.keys)]
