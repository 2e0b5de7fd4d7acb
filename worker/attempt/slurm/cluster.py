"""``sinfo`` → the heartbeat's cluster report (partitions, idle/allocated nodes, max time)."""

from __future__ import annotations

from cpt_contract.settings import Settings
from cpt_contract.slurm import ClusterReport, Partition, parse_time_minutes
from worker.attempt.slurm import commands


def gres_gpus(gres: str) -> int:
    """GPUs per node in a GRES string: ``gpu:4``, ``gpu:a100:8(S:0-1)``, ``gpu:2,shard:4``;
    ``(null)``: 0."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields[0] != "gpu":
            continue
        try:
            total += int(fields[-1]) if len(fields) > 1 else 1
        except ValueError:
            total += 1  # gpu:a100 without a count: at least one
    return total


def parse_sinfo(text: str) -> list[Partition]:
    """Lines of ``%P|%a|%l|%F|%G`` (name, ``*`` on the default; up/down; MaxTime; A/I/O/T;
    GRES); ``%G`` may be missing (an older format). sinfo writes one line per partition and
    GRES: a partition's lines are summed (nodes) and maxed (GPUs per node)."""
    partitions: list[Partition] = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) not in (4, 5):
            continue
        name, avail, limit, counts = parts[:4]
        gpus = gres_gpus(parts[4]) if len(parts) == 5 else None
        try:
            allocated, idle, other, total = (int(n) for n in counts.split("/"))
        except ValueError:
            continue
        try:
            max_time = parse_time_minutes(limit)
        except ValueError:
            max_time = None  # "n/a" and the like: no limit we can check
        same = next((p for p in partitions if p.name == name.rstrip("*")), None)
        if same is not None:
            same.nodes_total += total
            same.nodes_idle += idle
            same.nodes_allocated += allocated
            same.nodes_other += other
            if gpus is not None:
                same.gpus_per_node = max(same.gpus_per_node or 0, gpus)
            continue
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
                gpus_per_node=gpus,
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
        partitions=partitions,
        default_partition=default,
        default_time_minutes=default_time,
        requests_gpus=settings.slurm_gpus and not settings.use_cpu,
    )
