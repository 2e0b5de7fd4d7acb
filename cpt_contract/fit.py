"""Can this run start on a box like that? One rule set, used by the API before queuing (against
the workers' heartbeats) and by the worker before launching (against itself)."""

from __future__ import annotations

from cpt_contract.runconfig.schema import LaunchSection, TrainingSection

#: (where in the config, what is wrong and the fix)
Problem = tuple[tuple[str, str], str]


def fit_problems(
    training: TrainingSection,
    launch: LaunchSection,
    *,
    cpu_only: bool,
    gpu_count: int,
    cpu_count: int | None,
) -> list[Problem]:
    """Sections, not the whole config: the API checks them even while other fields are invalid,
    so the user sees every problem at once."""
    nproc = launch.nproc_per_node
    problems: list[Problem] = []
    if cpu_only:
        if training.precision == "fp16":
            problems.append((("training", "precision"), "fp16 needs a GPU; choose bf16 or fp32"))
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
