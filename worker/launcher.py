"""Start torchrun in its own process group and stop the whole group.

torchrun's ranks are its children; killing torchrun alone orphans them (and on a GPU box keeps
their memory), so the run starts in a new session and every signal goes to the group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
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


#: How long torchrun may linger once its ranks are gone before it is SIGKILLed: its own
#: teardown after SIGTERM takes ~2 s on a busy box and guards nothing once the ranks have exited.
LAUNCHER_LINGER_SECONDS = 0.3


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


def terminate(proc: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM the group, SIGKILL it after ``grace`` seconds; returns once the group is gone.

    The ranks handle SIGTERM within ~0.2 s (pretrain writes its ``end`` event and exits); once
    only the launcher (the group leader) is left it gets SIGKILL after a short linger.
    """
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alone_since: float | None = None
    while time.monotonic() < deadline:
        proc.poll()
        members = group_members(pgid)
        if not members:
            break
        if members == {pgid}:
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > LAUNCHER_LINGER_SECONDS:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pgid, signal.SIGKILL)
        time.sleep(0.02)
    else:
        signal_group(pgid, signal.SIGKILL)
    # The ranks may outlive torchrun by a moment after SIGKILL; wait until none is left.
    deadline = time.monotonic() + 5
    while group_alive(pgid) and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.05)
    return proc.wait(timeout=5)


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
