"""GPU inventory (nvidia-smi) and per-run GPU allocation shared by the worker's pool processes.

Allocation uses one ``flock``-ed file per GPU under the worker's state dir: the pool runs tasks
in separate processes, and a lock held by a process is released by the kernel when it dies, so
a crashed task can never leak a GPU.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

QUERY = "index,name,memory.total,memory.used,utilization.gpu"


@dataclass
class GpuInfo:
    index: int
    name: str
    memory_total_mb: int
    memory_used_mb: int
    utilization_pct: int
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _int(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:  # "[N/A]" on some boards
        return 0


def parse_nvidia_smi(text: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` output."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        gpus.append(
            GpuInfo(int(parts[0]), parts[1], _int(parts[2]), _int(parts[3]), _int(parts[4]))
        )
    return gpus


def list_gpus() -> list[GpuInfo]:
    """The GPUs nvidia-smi sees; empty when there is no nvidia-smi or it fails (CPU box)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = parse_nvidia_smi(out)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        # Respect an operator's restriction of the worker to some GPUs.
        allowed = {v.strip() for v in visible.split(",") if v.strip()}
        gpus = [g for g in gpus if str(g.index) in allowed]
    return gpus


class GpuLease:
    """GPUs held by one run; released on ``release()`` or when the holding process dies."""

    def __init__(self, indices: list[int], handles: list[IO[str]]) -> None:
        self.indices = indices
        self._handles = handles

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(i) for i in self.indices)

    def release(self) -> None:
        for handle in self._handles:
            handle.close()  # closing drops the flock
        self._handles = []


def try_allocate(lock_dir: Path, gpus: list[GpuInfo], count: int, run_id: str) -> GpuLease | None:
    """Lock ``count`` free GPUs for ``run_id``, or None (nothing held) when too few are free."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    held: list[IO[str]] = []
    indices: list[int] = []
    for gpu in gpus:
        if len(indices) == count:
            break
        handle = open(lock_dir / f"gpu-{gpu.index}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(run_id)
        handle.flush()
        held.append(handle)
        indices.append(gpu.index)
    lease = GpuLease(indices, held)
    if len(indices) < count:
        lease.release()
        return None
    return lease


def holders(lock_dir: Path, gpus: list[GpuInfo]) -> list[GpuInfo]:
    """``gpus`` with ``run_id`` filled for the GPUs a run holds right now (for the heartbeat)."""
    for gpu in gpus:
        path = lock_dir / f"gpu-{gpu.index}.lock"
        if not path.exists():
            continue
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                # Someone holds it: the file names the run.
                handle.seek(0)
                gpu.run_id = handle.read().strip() or None
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return gpus
