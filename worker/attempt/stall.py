"""Stall detection: a run that makes no training step for too long is failed, not left
``running`` until ``ddp_timeout`` (8 h by default) with one rank hung in a collective.

The limit is ``CPT_STALL_SECONDS`` or, by default, max(10 x the run's median step time,
600 s), measured from the shipped ``log`` events; before the first step (data and model
loading) nothing is judged. First every rank is asked for its Python stacks (faulthandler on
SIGUSR1, registered by ``worker.training.guards``): they land in the attempt log. A stopped
rank (SIGSTOP, a debugger) cannot dump: the log says so instead.
"""

from __future__ import annotations

import signal
import statistics
import time
from collections.abc import Callable

import psutil

from worker.attempt.proctree import ProcessTree
from worker.attempt.shipper import RunShipper

DEFAULT_FLOOR_SECONDS = 600.0


def limit_seconds(configured: float | None, step_seconds: list[float]) -> float:
    if configured:
        return configured
    if not step_seconds:
        return DEFAULT_FLOOR_SECONDS
    return max(10 * statistics.median(step_seconds), DEFAULT_FLOOR_SECONDS)


def stall_reason(
    last_step: int | None, step_seconds: list[float], quiet: float, configured: float | None
) -> str | None:
    """The stall verdict (pure): ``quiet`` seconds since the last new step, ``step_seconds``
    the measured time per step so far; None while loading or within the limit."""
    if last_step is None or (not step_seconds and last_step == 0):
        return None  # not training yet (or only the start event): loading is not a stall
    limit = limit_seconds(configured, step_seconds)
    if quiet < limit:
        return None
    # The limit, not the measured quiet: the check runs every 0.5 s on a loaded box, and the
    # reason should say the rule that fired (the log has the exact times).
    return f"stalled: no step for {limit:.0f} s at step {last_step}"


def stalled_reason(shipper: RunShipper, configured: float | None) -> str | None:
    """``stall_reason`` on what the shipper saw of the training's steps."""
    quiet = time.monotonic() - shipper.progress_at
    return stall_reason(shipper.last_step, shipper.step_seconds, quiet, configured)


def dump_stacks(tree: ProcessTree, note: Callable[[str], None], wait: float = 2.0) -> None:
    """SIGUSR1 to every rank (faulthandler writes its stacks to the log); stopped ones named."""
    asked = []
    for proc in tree.ranks():
        try:
            if proc.status() == psutil.STATUS_STOPPED:
                note(f"rank pid {proc.pid} is stopped (SIGSTOP): it cannot dump its stack")
                continue
            proc.send_signal(signal.SIGUSR1)
            asked.append(proc.pid)
        except psutil.Error:
            continue
    if asked:
        note(f"Python stacks of pids {', '.join(map(str, asked))} follow (faulthandler)")
        time.sleep(wait)
