"""Start torchrun (or a job's tool) in its own session, dying with its parent.

Stopping is ``worker.attempt.proctree``'s: torch 2.13 starts each rank in a session of its own, so a
signal to this group no longer reaches them. ``kill_stale_group`` remains for records a worker
without process trees left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM torchrun if the worker process dies (kill -9).

    torchrun forwards SIGTERM to its ranks, so a crashed worker leaves no training behind
    whose results nobody collects. Linux only; elsewhere this is a no-op.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    argv: list[str], log_path: Path, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Launch ``argv`` (a list, never a shell) in a new session, stdout+stderr appended to the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # tiny ctypes call; the task thread is the only one
        )


def group_members(pgid: int) -> set[int]:
    """Pids of the group's living processes (zombies excluded)."""
    members = set()
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.add(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_stale_group(pgid: int) -> bool:
    """SIGKILL a group left by a worker that died, if it still runs torch. True if it did."""
    try:
        leader = psutil.Process(pgid)
        cmdline = " ".join(leader.cmdline())
    except psutil.Error:
        cmdline = ""
    if cmdline and "torch.distributed.run" not in cmdline:
        return False  # the pid was reused by something else: leave it alone
    if not group_alive(pgid):
        return False
    signal_group(pgid, signal.SIGKILL)
    return True
