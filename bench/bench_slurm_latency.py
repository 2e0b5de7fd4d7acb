"""Latency of the Slurm executor on the local one-host Slurm (``scripts/slurm-local.sh``).

All real: API, Redis, Celery worker with ``CPT_EXECUTOR=slurm``, sbatch, slurmctld, slurmd,
torchrun on the tiny model (2 steps). Measured per run, polling the API and ``scontrol`` every
20 ms:
- ``submit→RUNNING``: ``POST /api/runs`` → the API shows ``running`` (Celery, claim, sbatch,
  scheduling, the worker's first poll that sees RUNNING);
- ``sbatch→RUNNING``: the job is first seen in ``scontrol`` → first seen RUNNING there;
- ``COMPLETED→succeeded``: ``scontrol`` first shows COMPLETED → the API shows ``succeeded``.
Baseline: the local executor's ``POST → running`` (``bench_submit_to_launch.py``: ~0.2 s).

    python bench/bench_slurm_latency.py [--samples 5]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from _panel import REDIS_URL, Panel, percentile, start_panel, tiny_assets

WORKER_ENV = {
    "CPT_EXECUTOR": "slurm",
    "CPT_SLURM_GPUS": "false",
    "CPT_SLURM_POLL_SECONDS": "0.2",
    "OMP_NUM_THREADS": "1",
}


def _job_state(run_id: str) -> tuple[str | None, str | None]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-n", f"cpt-{run_id}", "-o", "%i|%T"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not out:
        return None, None
    job, _, state = out.splitlines()[-1].partition("|")
    return job, state


def sample(panel: Panel, config: dict[str, object]) -> dict[str, float]:
    marks: dict[str, float] = {}
    with panel.client() as c:
        t0 = time.perf_counter()
        run = c.post("/api/runs", json={"preset": "tiny-demo", "config": config}).json()
        while "succeeded" not in marks:
            now = time.perf_counter() - t0
            if now > 180:
                raise SystemExit(f"run {run['id']} did not finish in 180 s: {marks}")
            job, state = _job_state(run["id"])
            if job:
                marks.setdefault("job seen", now)
            if state in ("RUNNING", "COMPLETING", "COMPLETED"):
                marks.setdefault("job RUNNING", now)
            if state == "COMPLETED":
                marks.setdefault("job COMPLETED", now)
            status = c.get(f"/api/runs/{run['id']}").json()["status"]
            if status == "running":
                marks.setdefault("api running", now)
            if status == "succeeded":
                marks["succeeded"] = now
                marks.setdefault("api running", now)
            elif status in ("failed", "cancelled"):
                raise SystemExit(f"run {run['id']} {status}")
            time.sleep(0.02)
    return {
        "submit→RUNNING": marks["api running"],
        "sbatch→RUNNING": marks["job RUNNING"] - marks["job seen"],
        "COMPLETED→succeeded": marks["succeeded"] - marks.get("job COMPLETED", marks["succeeded"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    assets = tiny_assets()
    config = {
        "model": {
            "model_name_or_path": str(assets["model"]),
            "tokenizer_name_or_path": str(assets["tokenizer_extended"]),
        },
        "data": {"dataset_dir": str(assets["corpus"]), "max_eval_samples": 4},
        "training": {"max_steps": 2, "save_steps": 2, "logging_steps": 1},
        "launch": {"deepspeed": "none"},
    }
    with tempfile.TemporaryDirectory() as tmp:
        panel = start_panel(
            Path(tmp) / "data", broker_url=REDIS_URL, allowed_roots=[assets["root"]]
        )
        try:
            panel.start_worker(concurrency=1, extra_env=WORKER_ENV)
            samples = [sample(panel, config) for _ in range(args.samples)]
        finally:
            panel.stop()
    print(f"| measure ({args.samples} runs) | p50 | max |")
    print("| --- | --- | --- |")
    for key in samples[0]:
        values = [s[key] for s in samples]
        print(f"| {key} | {percentile(values, 50):.2f} s | {max(values):.2f} s |")


if __name__ == "__main__":
    main()
