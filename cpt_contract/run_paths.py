"""The run-directory layout, spelled once for the API (which shows and serves it) and the worker
(which writes it)::

    <runs_dir>/<run_id>/
        config.json                     the validated run config, as launched
        ds_config.json                  the DeepSpeed JSON the argv names
        output/                         --output_dir: checkpoint-N/, events.jsonl, the final model
        logs/attempt-N.log              stdout + stderr of attempt N
        logs/.shipped-attempt-N.json    the shipper's acknowledged offsets for attempt N
        logs/.fence-attempt-N           touched by the worker while it watches attempt N
        logs/merge-<checkpoint>.log     a merge job's log
        merged/<checkpoint>/            a merged (plain HF) model
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: What a run id may look like before any side builds a path from it (the API makes ``r-<hex>``).
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The only checkpoint names a run can have (``Trainer``'s ``checkpoint-<step>``).
CHECKPOINT_NAME = re.compile(r"^checkpoint-\d{1,12}$")


@dataclass(frozen=True)
class RunPaths:
    run_dir: Path

    @classmethod
    def of(cls, runs_dir: Path, run_id: str) -> RunPaths:
        return cls(runs_dir / run_id)

    @property
    def config(self) -> Path:
        return self.run_dir / "config.json"

    @property
    def ds_config(self) -> Path:
        return self.run_dir / "ds_config.json"

    @property
    def output_dir(self) -> Path:
        return self.run_dir / "output"

    @property
    def events(self) -> Path:
        return self.output_dir / "events.jsonl"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def log(self, attempt: int) -> Path:
        return self.logs_dir / f"attempt-{attempt}.log"

    def fence(self, attempt: int) -> Path:
        """Touched by the worker while it watches attempt N (``worker/fence.py``)."""
        return self.logs_dir / f".fence-attempt-{attempt}"

    def shipped_state(self, attempt: int) -> Path:
        return self.logs_dir / f".shipped-attempt-{attempt}.json"

    def checkpoint(self, name: str) -> Path:
        return self.output_dir / name

    def merge_log(self, checkpoint: str) -> Path:
        return self.logs_dir / f"merge-{checkpoint}.log"

    def merged(self, checkpoint: str) -> Path:
        return self.run_dir / "merged" / checkpoint

    def exported(self, checkpoint: str, dtype: str) -> Path:
        """Where an export for serving of ``checkpoint`` in ``dtype`` lands."""
        return self.run_dir / "exports" / f"{checkpoint}-{dtype}"


@dataclass(frozen=True)
class JobPaths:
    """``<jobs_dir>/<job_id>/``: ``job.log``, ``result.json`` and, for a tokenizer job, ``tokenizer/``."""

    job_dir: Path

    @classmethod
    def of(cls, jobs_dir: Path, job_id: str) -> JobPaths:
        return cls(jobs_dir / job_id)

    @property
    def log(self) -> Path:
        return self.job_dir / "job.log"

    @property
    def result(self) -> Path:
        return self.job_dir / "result.json"

    @property
    def output(self) -> Path:
        return self.job_dir / "output"
