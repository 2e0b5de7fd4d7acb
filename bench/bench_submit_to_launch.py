"""Time from ``POST /api/runs`` to torchrun running, on an idle worker: Redis vs embedded broker.

Measured per run (all real: API, broker, Celery worker, claim, run dir, torchrun):
- ``claimed``: the run is ``starting`` (the worker got the message and claimed it),
- ``process``: a ``torch.distributed.run`` process for the run exists (psutil),
- ``running``: the API shows ``running`` (the worker reported the pid).
Each run is cancelled as soon as it is running, so the worker is idle for the next sample.
Baseline: the Redis broker; the embedded filesystem broker polls every 50 ms.

    python bench/bench_submit_to_launch.py [--samples 5] [--brokers redis,embedded]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil
from _panel import REDIS_URL, Panel, percentile, start_panel, tiny_assets

TARGET_S = 1.5


def _torchrun_exists(run_dir: str) -> bool:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "torch.distributed.run" in cmdline and any(run_dir in a for a in cmdline):
            return True
    return False


def sample(panel: Panel, config: dict[str, object]) -> dict[str, float]:
    with panel.client() as c:
        t0 = time.perf_counter()
        run = c.post(
            "/api/runs", json={"preset": "tiny-demo", "name": "launch bench", "config": config}
        ).json()
        run_dir = str(panel.data_dir.resolve() / "runs" / run["id"]) + "/"
        marks: dict[str, float] = {"posted": time.perf_counter() - t0}
        last_api = 0.0
        while "running" not in marks or "process" not in marks:
            now = time.perf_counter()
            if now - t0 > 60:
                raise SystemExit(f"run {run['id']} did not start within 60 s: {marks}")
            if "process" not in marks and _torchrun_exists(run_dir):
                marks["process"] = time.perf_counter() - t0
            if now - last_api > 0.02:
                last_api = now
                status = c.get(f"/api/runs/{run['id']}").json()["status"]
                if status in ("starting", "running"):
                    marks.setdefault("claimed", time.perf_counter() - t0)
                if status == "running":
                    marks.setdefault("running", time.perf_counter() - t0)
            time.sleep(0.005)
        c.post(f"/api/runs/{run['id']}/cancel")
        deadline = time.monotonic() + 30
        while c.get(f"/api/runs/{run['id']}").json()["status"] != "cancelled":
            if time.monotonic() > deadline:
                raise SystemExit(f"run {run['id']} was not cancelled in 30 s")
            time.sleep(0.1)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--brokers", default="redis,embedded")
    args = parser.parse_args()
    assets = tiny_assets()
    config: dict[str, object] = {
        "model": {
            "model_name_or_path": str(assets["model"]),
            "tokenizer_name_or_path": str(assets["tokenizer_extended"]),
        },
        "data": {"dataset_dir": str(assets["corpus"])},
        "training": {"max_steps": 100000},
    }
    results: dict[str, list[dict[str, float]]] = {}
    for broker in args.brokers.split(","):
        with tempfile.TemporaryDirectory(prefix=f"bench-launch-{broker}-") as tmp:
            panel = start_panel(
                Path(tmp) / "data",
                broker_url=REDIS_URL if broker == "redis" else None,
                allowed_roots=[assets["root"]],
            )
            try:
                panel.start_worker(concurrency=1)
                sample(panel, config)  # warm-up: the pool process's first task
                results[broker] = [sample(panel, config) for _ in range(args.samples)]
            finally:
                panel.stop()

    print(
        f"\nPOST /api/runs → ... on an idle worker, {args.samples} runs per broker (seconds; p50 / max)"
    )
    print(
        f"{'broker':<10} {'claimed':>15} {'torchrun exists':>17} {'running (pid)':>15}  <{TARGET_S}s"
    )
    base = None
    for broker, rows in results.items():
        cells = []
        for key in ("claimed", "process", "running"):
            values = [r[key] for r in rows]
            cells.append(f"{percentile(values, 50):.3f} / {max(values):.3f}")
        p50_running = percentile([r["running"] for r in rows], 50)
        ok = "yes" if max(r["process"] for r in rows) < TARGET_S else "NO"
        print(f"{broker:<10} {cells[0]:>15} {cells[1]:>17} {cells[2]:>15}  {ok}")
        if base is None:
            base = p50_running
        else:
            print(
                f"{'':<10} running p50 vs {next(iter(results))} (baseline): {p50_running - base:+.3f} s"
            )


if __name__ == "__main__":
    main()
