"""What the API and a Slurm worker agree on: the cluster report of the heartbeat (``sinfo``)
and Slurm's time-limit format, so the preflight and the worker read a limit the same way."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

#: Slurm's ``--time`` formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (and UNLIMITED/INFINITE).
TIME_PATTERN = r"^(\d{1,7}(:\d{1,2}){0,2}|\d{1,5}-\d{1,2}(:\d{1,2}){0,2})$"
_UNLIMITED = {"unlimited", "infinite"}


def parse_time_minutes(text: str) -> float | None:
    """A Slurm time string in minutes; None for unlimited. ValueError when malformed."""
    value = text.strip().lower()
    if value in _UNLIMITED:
        return None
    if not re.fullmatch(TIME_PATTERN, value):
        raise ValueError(f"not a Slurm time limit: {text!r} (use minutes, H:M:S or D-H:M:S)")
    days = 0
    if "-" in value:
        day_part, value = value.split("-", 1)
        days = int(day_part)
        parts = [int(p) for p in value.split(":")]
        hours, minutes, seconds = [*parts, 0, 0][:3]
    else:
        parts = [int(p) for p in value.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts
    return days * 1440 + hours * 60 + minutes + seconds / 60


def format_minutes(minutes: float | None) -> str:
    if minutes is None:
        return "unlimited"
    total = round(minutes * 60)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{mins:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


class Partition(BaseModel):
    """One partition, from ``sinfo -h -a -o '%P|%a|%l|%F|%G'``."""

    name: str = Field(max_length=200)
    default: bool = False
    available: bool = True
    #: The partition's MaxTime in minutes; None: unlimited.
    max_time_minutes: float | None = None
    nodes_total: int = Field(default=0, ge=0)
    nodes_idle: int = Field(default=0, ge=0)
    nodes_allocated: int = Field(default=0, ge=0)
    nodes_other: int = Field(default=0, ge=0)
    #: GPUs per node from the nodes' GRES (the most any node has); None: not reported.
    gpus_per_node: int | None = Field(default=None, ge=0)


class ClusterReport(BaseModel):
    """The Slurm cluster a worker submits to, as its heartbeat describes it."""

    partitions: list[Partition] = Field(default_factory=list, max_length=256)
    #: The partition runs go to without ``launch.partition``: the worker's setting, else
    #: the cluster's default; None when neither exists.
    default_partition: str | None = Field(default=None, max_length=200)
    #: The worker's default time limit (``CPT_SLURM_TIME_LIMIT``), minutes; None: partition's.
    default_time_minutes: float | None = None
    #: Whether the worker asks for GPUs (``CPT_SLURM_GPUS``); None: an older worker's report.
    requests_gpus: bool | None = None
    #: Why the report is empty (``sinfo`` failed), shown on the Workers page.
    error: str | None = Field(default=None, max_length=2000)

    def partition(self, name: str | None) -> Partition | None:
        wanted = name or self.default_partition
        return next((p for p in self.partitions if p.name == wanted), None)
