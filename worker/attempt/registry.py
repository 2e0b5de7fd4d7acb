"""On-disk registry of the runs this worker box is executing.

Tasks run in the pool's child processes while the heartbeat runs in the main process; a small
directory is the simplest channel between them that also survives a crash of either:

- ``runs/<run_id>.json`` — {"run_id", "attempt", "pgid", "procs", "instance", "task_pid",
  "task_started"} while a run is active (plus "slurm_job", the job id, on a Slurm worker)
- ``cancel/<run_id>`` — the heartbeat saw a cancel request; the task polls for it
- ``stop/<run_id>`` — the worker is shutting down: the task stops its run and reports it
- ``../gpus/gpu-N.lock`` — GPU leases of the box (see ``worker.attempt.gpu``)
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpt_contract.run_paths import RUN_ID
from cpt_contract.settings import Settings
from worker.attempt import instance


def worker_name(settings: Settings) -> str:
    return settings.worker_name or socket.gethostname()


def check_run_id(run_id: str) -> str:
    """Run ids become path components: refuse anything that could escape the runs dir."""
    if not RUN_ID.fullmatch(run_id):  # fullmatch: "$" would let a trailing newline in
        raise ValueError(f"invalid run id {run_id!r}")
    return run_id


@dataclass(frozen=True)
class Registry:
    root: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> Registry:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", worker_name(settings))
        return cls(settings.resolved_data_dir / "worker-state" / name)

    @property
    def gpu_lock_dir(self) -> Path:
        # Shared by every worker on this data dir: GPUs belong to the box, not to one worker.
        return self.root.parent / "gpus"

    def _run_file(self, run_id: str) -> Path:
        return self.root / "runs" / f"{check_run_id(run_id)}.json"

    def _cancel_file(self, run_id: str) -> Path:
        return self.root / "cancel" / check_run_id(run_id)

    def register(
        self,
        run_id: str,
        attempt: int,
        pgid: int | None = None,
        procs: list[list[float]] | None = None,
        slurm_job: str | None = None,
    ) -> None:
        path = self._run_file(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "run_id": run_id,
            "attempt": attempt,
            "pgid": pgid,
            "procs": procs or [],
            **instance.owner(),
        }
        if slurm_job is not None:
            record["slurm_job"] = slurm_job
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)  # atomic: the heartbeat never reads half a record

    def unregister(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._run_file(run_id).unlink()
        with contextlib.suppress(FileNotFoundError):
            self._cancel_file(run_id).unlink()
        with contextlib.suppress(FileNotFoundError):
            self._stop_file(run_id).unlink()

    def active(self) -> list[dict[str, Any]]:
        records = []
        for path in sorted((self.root / "runs").glob("*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return records

    def request_cancel(self, run_id: str) -> None:
        path = self._cancel_file(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def cancel_requested(self, run_id: str) -> bool:
        return self._cancel_file(run_id).exists()

    def _stop_file(self, run_id: str) -> Path:
        return self.root / "stop" / check_run_id(run_id)

    def request_stop_all(self) -> list[str]:
        """Worker shutdown: ask every active run's task to stop (it reports the run failed)."""
        stopped = []
        for record in self.active():
            run_id = str(record.get("run_id", ""))
            if RUN_ID.fullmatch(run_id):
                path = self._stop_file(run_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                stopped.append(run_id)
        return stopped

    def stop_requested(self, run_id: str) -> bool:
        return self._stop_file(run_id).exists()

    def clear(self) -> list[dict[str, Any]]:
        """Forget every record (worker start: none of them can still be ours). Returns them."""
        records = self.active()
        for sub in ("runs", "cancel", "stop"):
            for path in (self.root / sub).glob("*"):
                with contextlib.suppress(OSError):
                    path.unlink()
        return records
