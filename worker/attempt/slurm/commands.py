"""The Slurm commands the worker runs: always argv lists with a timeout, never a shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: Slurm's client commands answer in milliseconds; a busy controller may take seconds.
TIMEOUT = 30.0


class SlurmError(RuntimeError):
    """A Slurm command failed; the message is its stderr (or why it could not run)."""


def run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = TIMEOUT) -> str:
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SlurmError(f"{argv[0]} not found: is this a Slurm login node?") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{argv[0]} did not answer in {timeout:.0f}s") from exc
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split())[:500]
        raise SlurmError(f"{argv[0]} exited {done.returncode}: {message}")
    return done.stdout


def sbatch(options: list[str], script: Path, env: dict[str, str]) -> str:
    """Submit; returns the job id (``--parsable`` prints ``id`` or ``id;cluster``)."""
    out = run(["sbatch", "--parsable", *options, str(script)], env=env)
    job_id = out.strip().split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id: {out.strip()[:200]!r}")
    return job_id


def show_job(job_id: str) -> str | None:
    """``scontrol -o show job``: one line of Key=Value; None once Slurm forgot the job."""
    try:
        return run(["scontrol", "-o", "show", "job", job_id])
    except SlurmError as exc:
        if "Invalid job id" in str(exc):
            return None
        raise


def squeue_state(job_id: str) -> str | None:
    """``squeue``'s view (state|reason), the fallback while ``scontrol`` fails."""
    out = run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%r"]).strip()
    return out or None


def queued_jobs() -> list[tuple[str, str, str, str]]:
    """This user's pending and running jobs as (id, name, comment, state)."""
    out = run(
        [
            "squeue",
            "-h",
            "--me",
            "-t",
            "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED",
            "-o",
            "%i|%j|%k|%T",
        ]
    )
    jobs = []
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0].isdigit():
            jobs.append((parts[0], parts[1], parts[2], parts[3]))
    return jobs


def scancel(job_id: str) -> None:
    run(["scancel", job_id])


def sinfo_partitions() -> str:
    """One line per partition and GRES: name (``*`` = default) | avail | timelimit | A/I/O/T
    nodes | GRES (``gpu:4``, ``(null)``)."""
    return run(["sinfo", "-h", "-a", "-o", "%P|%a|%l|%F|%G"])
