"""Who owns a run record: one *instance* of the worker, not its name.

A worker restarted under the same name (a container restart) must never adopt a dead
instance's runs: a pid alone is no proof (a zombie not yet reaped still "exists"; in a fresh
container a small pid is soon reused). So a record names the instance (a random id made when
the worker starts, inherited by its pool processes through the environment) and the task
process as (pid, create_time).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import psutil

ENV = "CPT_WORKER_INSTANCE"


def new_instance() -> str:
    """Called once at worker start, before the pool forks: the children inherit it."""
    value = secrets.token_hex(8)
    os.environ[ENV] = value
    return value


def current() -> str:
    return os.environ.get(ENV) or new_instance()


def owner() -> dict[str, Any]:
    """The fields a run record carries to name the process that owns it."""
    me = psutil.Process()
    return {"instance": current(), "task_pid": me.pid, "task_started": me.create_time()}


def task_alive(record: dict[str, Any]) -> bool:
    """The record's task process still runs (same pid *and* start time, not a zombie)."""
    pid, started = record.get("task_pid"), record.get("task_started")
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return False
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def is_mine(record: dict[str, Any]) -> bool:
    """A record of this worker instance whose task is still running."""
    return record.get("instance") == current() and task_alive(record)
