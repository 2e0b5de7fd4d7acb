"""``sinfo`` → the heartbeat's cluster report (partitions, idle/allocated nodes, max time)."""

from __future__ import annotations

from cpt_contract.settings import Settings
from cpt_contract.slurm import ClusterReport, Partition, parse_time_minutes
from worker.slurm import commands


def parse_sinfo(text: str) -> list[Partition]:
    """Lines of ``%P|%a|%l|%F`` (name, ``*`` on the default; up/down; MaxTime; A/I/O/T)."""
    partitions = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        name, avail, limit, counts = parts
        try:
            allocated, idle, other, total = (int(n) for n in counts.split("/"))
        except ValueError:
            continue
        try:
            max_time = parse_time_minutes(limit)
        except ValueError:
            max_time = None  # "n/a" and the like: no limit we can check
        partitions.append(
            Partition(
                name=name.rstrip("*"),
                default=name.endswith("*"),
                available=avail == "up",
                max_time_minutes=max_time,
                nodes_total=total,
                nodes_idle=idle,
                nodes_allocated=allocated,
                nodes_other=other,
            )
        )
    return partitions


def cluster_report(settings: Settings) -> ClusterReport:
    """The report as this worker would submit: its partition, else the cluster's default."""
    default_time = (
        parse_time_minutes(settings.slurm_time_limit) if settings.slurm_time_limit else None
    )
    try:
        partitions = parse_sinfo(commands.sinfo_partitions())
    except commands.SlurmError as exc:
        return ClusterReport(default_time_minutes=default_time, error=str(exc)[:2000])
    default = settings.slurm_partition or next((p.name for p in partitions if p.default), None)
    return ClusterReport(
        partitions=partitions, default_partition=default, default_time_minutes=default_time
    )
