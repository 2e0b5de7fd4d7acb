"""What a child of the worker (a run's training, local or in a Slurm job, or a job's tool) finds
in its environment and may touch: one place for runs and jobs.

The environment: the worker's own, less its secrets (a child needs no API access), the repo
importable, unbuffered output, and this box's roots (the readers check every file they open
against them). The paths: every user path of a run config or a job's params is checked again
here against this box's roots, as the API did (a link may have appeared since, and a remote box
has its own roots).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cpt_contract.protocol import ClaimOut
from cpt_contract.roots import PathRefused, Roots, check_user_path
from cpt_contract.runconfig.schema import RunConfig
from worker.attempt.gpu import GpuLease

#: The repository root (this file is worker/attempt/environment.py).
ROOT = Path(__file__).resolve().parents[2]
PRETRAIN = ROOT / "worker" / "pretrain.py"
DS_CONFIG_DIR = ROOT / "worker" / "ds_configs"
#: Environment variables no child inherits (the Hub token reaches a download's tool only through
#: the job's own additions, ``worker.agent.jobs.tool_env``).
SECRET_ENV = ("CPT_API_TOKEN", "CPT_WORKER_TOKEN", "CPT_HUB_TOKEN", "HF_TOKEN")


def base_env(roots: Roots, drop_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """The worker's environment for a child: no secrets, unbuffered, the repo on PYTHONPATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRET_ENV and not (drop_prefixes and k.startswith(drop_prefixes))
    }
    env.update(roots.env())
    env["PYTHONUNBUFFERED"] = "1"
    # The script imports worker.* modules: make the repo importable whatever the cwd.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def cpu_env(env: dict[str, str]) -> dict[str, str]:
    """CPU forced (on a GPU box too): DeepSpeed's CPU accelerator, no GPU visible."""
    env["DS_ACCELERATOR"] = "cpu"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def child_env(
    use_cpu: bool, nproc: int, concurrency: int, lease: GpuLease | None, roots: Roots
) -> dict[str, str]:
    """A local child's environment (a run's ranks, a job's tool): ``base_env``, its devices,
    and the cores shared among every rank of every concurrent run."""
    env = base_env(roots)
    if use_cpu:
        cpu_env(env)  # CPU forced on a GPU box: keep the GPUs out of it
    elif lease is not None:
        env["CUDA_VISIBLE_DEVICES"] = lease.cuda_visible_devices
    if "OMP_NUM_THREADS" not in os.environ:
        # Share the cores among every rank of every concurrent run instead of oversubscribing.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (nproc * concurrency)))
    return env


def tracker_env(claim: ClaimOut, config: RunConfig, output_dir: Path) -> dict[str, str]:
    """A run's trackers' settings as its claim carried them (keys too: they reach the ranks
    only here, in the environment), plus where W&B and Trackio write locally (the run's output
    dir, unless set otherwise: never the worker's home)."""
    env = dict(claim.tracker_env)
    if "wandb" in config.training.report_to:
        env.setdefault("WANDB_DIR", str(output_dir))
    if "trackio" in config.training.report_to:
        # Trackio's SQLite database (``<project>.db``), also kept when it syncs to a Space.
        env.setdefault("TRACKIO_DIR", str(output_dir / "trackio"))
    return env


def refused_path(fields: Iterable[tuple[str, str]], roots: Roots) -> str | None:
    """``field: why`` for the first path (of ``(field, path)`` pairs) outside this box's roots,
    or None when every one of them, and every file inside them, may be used."""
    for field, raw in fields:
        try:
            check_user_path(raw, roots)
        except PathRefused as exc:
            return f"{field}: {exc}"
    return None
