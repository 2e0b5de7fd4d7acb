"""Disks as a first-class resource: the workers' volumes (from their heartbeats) in health, and
a submit whose checkpoints cannot fit refused before anything is queued.

Found overnight: with the runs volume full, health stayed "ok", new runs were accepted, and
they failed at their first save. The space that matters is the worker's, not the API's: each
heartbeat carries its data, runs and cache volumes (``worker/agent/heartbeat.py::volumes``).
"""

from __future__ import annotations

import shutil
from typing import Any

from sqlmodel import Session

from backend.services import workers
from backend.services.estimates import estimates
from backend.services.validation import ConfigInvalid, error
from cpt_contract.runconfig.schema import RunConfig
from cpt_contract.settings import Settings

#: The volumes a worker writes to: too little room on one of them and runs will fail.
WRITTEN = ("data", "runs", "cache")


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def low_volumes(session: Session, settings: Settings) -> list[str]:
    """Each live worker's written volume below ``low_disk_gb``, in words."""
    floor = settings.low_disk_gb * 2**30
    out = []
    for w in workers.live_workers(session, settings):
        for v in w.volumes or []:
            if v.get("name") in WRITTEN and int(v.get("free_bytes", 0)) < floor:
                out.append(
                    f"worker {w.name}: its {v['name']} volume ({v.get('path')}) has "
                    f"{_gb(int(v['free_bytes']))} free (below {settings.low_disk_gb:g} GB)"
                )
    return out


def runs_room(session: Session, settings: Settings, queue: str) -> tuple[int, str] | None:
    """The most room a live worker of the queue has where it writes checkpoints (its ``runs``
    volume), and where; without a report, the API's own runs directory (a one-box panel)."""
    best: tuple[int, str] | None = None
    for w in workers.live_workers(session, settings, queue):
        for v in w.volumes or []:
            if v.get("name") == "runs":
                room = (int(v["free_bytes"]), f"worker {w.name}'s runs volume ({v.get('path')})")
                best = room if best is None or room[0] > best[0] else best
    if best is None:
        try:
            best = (
                shutil.disk_usage(settings.runs_dir).free,
                f"the runs volume ({settings.runs_dir})",
            )
        except OSError:
            return None
    return best


def check_checkpoints_fit(session: Session, settings: Settings, config: RunConfig) -> None:
    """422 at ``training.save_total_limit`` when the checkpoints kept at once cannot fit."""
    disk = estimates(session, config).disk
    if disk.total_bytes is None:
        return  # the model's size is not known (not Llama-shaped): nothing honest to say
    room = runs_room(session, settings, config.launch.queue)
    if room is None or disk.total_bytes <= room[0]:
        return
    free, where = room
    kept = disk.kept or 1
    detail: dict[str, Any] = error(
        ["body", "config", "training", "save_total_limit"],
        f"{kept} checkpoint(s) of {_gb(disk.checkpoint_bytes or 0)} need {_gb(disk.total_bytes)}; "
        f"{where} has {_gb(free)} free ({_gb(disk.total_bytes - free)} short): free space "
        "there or lower training.save_total_limit",
        "disk_too_small",
    )
    raise ConfigInvalid([detail])
