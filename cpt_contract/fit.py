"""Can this run start on a box like that? One rule set, used by the API before queuing (against
the workers' heartbeats) and by the worker before launching (against itself)."""

from __future__ import annotations

from cpt_contract.runconfig.schema import LaunchSection, TrainingSection
from cpt_contract.slurm import ClusterReport, format_minutes, parse_time_minutes

#: (where in the config, what is wrong and the fix)
Problem = tuple[tuple[str, str], str]


def fit_problems(
    training: TrainingSection,
    launch: LaunchSection,
    *,
    cpu_only: bool,
    gpu_count: int,
    cpu_count: int | None,
    executor: str = "local",
) -> list[Problem]:
    """Sections, not the whole config: the API checks them even while other fields are invalid,
    so the user sees every problem at once. A Slurm worker's own GPUs and cores do not matter
    (the compute nodes run the job): its partitions are checked by ``slurm_problems``."""
    nproc = launch.nproc_per_node
    problems: list[Problem] = []
    if cpu_only and training.precision == "fp16":
        problems.append((("training", "precision"), "fp16 needs a GPU; choose bf16 or fp32"))
    if executor == "slurm":
        return problems
    if launch.nnodes > 1 and not launch.rdzv_endpoint:
        problems.append(
            (
                ("launch", "rdzv_endpoint"),
                "multi-node runs on a local worker need host:port of node 0 "
                "(on a Slurm queue the allocation's first node is used)",
            )
        )
    if cpu_only:
        if cpu_count is not None and nproc > cpu_count:
            problems.append(
                (
                    ("launch", "nproc_per_node"),
                    f"launch.nproc_per_node={nproc} but this CPU-only worker has {cpu_count} "
                    f"cores; use at most {cpu_count} processes",
                )
            )
    elif nproc > gpu_count:
        problems.append(
            (
                ("launch", "nproc_per_node"),
                f"launch.nproc_per_node={nproc} but this worker has {gpu_count} GPU"
                f"{'s' if gpu_count != 1 else ''}; lower nproc_per_node or use another queue",
            )
        )
    return problems


def slurm_problems(launch: LaunchSection, cluster: ClusterReport) -> list[Problem]:
    """The run against the partitions ``sinfo`` reported: a job that can never start would
    pend forever, so it is refused at the field instead."""
    if cluster.error and not cluster.partitions:
        return []  # the report is empty for a reason of its own: the worker checks again
    names = [p.name for p in cluster.partitions]
    partition = cluster.partition(launch.partition)
    if partition is None:
        wanted = launch.partition or cluster.default_partition
        what = f"partition {wanted!r} does not exist" if wanted else "no default partition"
        return [
            (
                ("launch", "partition"),
                f"{what} on this Slurm cluster; choose one of: {', '.join(names) or '(none)'}",
            )
        ]
    problems: list[Problem] = []
    if cluster.requests_gpus and partition.gpus_per_node == 0:
        # sbatch would refuse --gpus-per-node after the run was queued: say it before.
        problems.append(
            (
                ("launch", "partition"),
                f"partition {partition.name!r} has no GPUs (sinfo reports no gpu GRES on its "
                "nodes) but this queue's worker asks for them (CPT_SLURM_GPUS=true); choose a "
                "GPU partition, or run the worker with CPT_SLURM_GPUS=false for CPU nodes",
            )
        )
    if launch.nnodes > partition.nodes_total:
        problems.append(
            (
                ("launch", "nnodes"),
                f"launch.nnodes={launch.nnodes} but partition {partition.name!r} has "
                f"{partition.nodes_total} node{'s' if partition.nodes_total != 1 else ''}; "
                f"use at most {partition.nodes_total} or another partition",
            )
        )
    limit = (
        parse_time_minutes(launch.time_limit) if launch.time_limit else cluster.default_time_minutes
    )
    maximum = partition.max_time_minutes
    if limit is not None and maximum is not None and limit > maximum:
        source = "launch.time_limit" if launch.time_limit else "the worker's default time limit"
        problems.append(
            (
                ("launch", "time_limit"),
                f"{source} {format_minutes(limit)} is above partition {partition.name!r}'s "
                f"maximum {format_minutes(maximum)}; use at most {format_minutes(maximum)} "
                "(the run resumes in a new job when the limit is reached)",
            )
        )
    return problems
