"""What the panel costs a training run: the same tiny run bare, by its exact argv, and through
the panel, alternating.

- ``bare``: ``python worker/pretrain.py <the run's arguments>`` (no launcher, no panel);
- ``argv``: the exact argv the panel launches (``GET /api/runs/{id}/command``: torchrun ...),
  run directly with the worker's environment;
- ``panel``: ``POST /api/runs`` and wait for ``succeeded`` (API, embedded broker or Redis,
  Celery worker, shipper: all real).

Prints wall times (median, min-max), the ratio panel / argv (target <= 1.03), submit ->
running and training exit -> ``succeeded`` (from the server's own timestamps and the ``end``
event's time), and the API's plus the worker's CPU while a run trains, as % of one core (target
<= 3 %), against an idle baseline of the same length.

    python bench/overhead.py [--repeats 5] [--steps 60] [--broker embedded|redis]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from _panel import REDIS_URL, ROOT, Panel, start_panel, tiny_assets


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of their direct children (a Celery pool),
    without what they waited for (torchrun and its ranks are the training's, not ours)."""
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs = [p, *p.children()]
        except psutil.NoSuchProcess:
            continue
        for q in procs:
            try:
                if "torch.distributed.run" in " ".join(q.cmdline()):
                    continue
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def ts(value: str | None) -> float:
    assert value, "missing timestamp"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _torchrun_of(run_dir: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "torch.distributed.run" in cmdline and any(run_dir in a for a in cmdline):
            return proc
    return None


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def panel_run(panel: Panel, config: dict[str, Any], pids: list[int]) -> dict[str, float]:
    """One run through the panel. The API is polled every 0.5 s until the training starts and
    not while it runs (the benchmark's own load on the API); times come from the server's
    timestamps, and the training process's exit from watching it (psutil, 5 ms)."""
    with panel.client() as c:
        t_post = time.time()
        run = c.post("/api/runs", json={"preset": "tiny-demo", "config": config}).json()
        rid = run["id"]
        run_dir = str(panel.data_dir.resolve() / "runs" / rid) + "/"
        cpu_start = wall_start = None
        torchrun: psutil.Process | None = None
        exited: float | None = None
        last_poll = 0.0
        while True:
            if torchrun is None:
                torchrun = _torchrun_of(run_dir)
                if torchrun is not None:
                    cpu_start, wall_start = cpu_seconds(pids), time.perf_counter()
                    api_start = cpu_seconds(pids[:1])
            elif exited is None and not _alive(torchrun):
                exited = time.time()
                cpu_end, wall_end = cpu_seconds(pids), time.perf_counter()
                api_end = cpu_seconds(pids[:1])
            # No polls while the training runs (its exit is watched): the benchmark's own
            # requests would be counted as the panel's CPU.
            training = torchrun is not None and exited is None
            if not training and (time.time() - last_poll > 0.5 or exited is not None):
                last_poll = time.time()
                r = c.get(f"/api/runs/{rid}").json()
                if r["status"] in ("succeeded", "failed", "cancelled"):
                    break
            if time.time() - t_post > 600:
                raise SystemExit(f"run {rid} did not finish in 600 s")
            time.sleep(0.005 if torchrun is not None else 0.02)
        assert r["status"] == "succeeded", r
        assert exited is not None and cpu_start is not None and wall_start is not None
        finished = ts(r["finished_at"])
        return {
            "id": rid,  # type: ignore[dict-item]
            "wall": finished - t_post,
            "submit_to_running": ts(r["started_at"]) - ts(r["created_at"]),
            "exit_to_succeeded": finished - exited,
            "cpu": cpu_end - cpu_start,
            "api_cpu": api_end - api_start,
            "cpu_wall": wall_end - wall_start,
        }


def direct_run(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]}... exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return took


def _has_gpu() -> bool:
    import shutil

    return shutil.which("nvidia-smi") is not None


def relocate(argv: list[str], run_dir: str, new: Path) -> list[str]:
    """The same argv writing under ``new`` instead of the panel's run dir."""
    new.mkdir(parents=True)
    return [a.replace(run_dir, str(new)) for a in argv]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--broker", choices=("embedded", "redis"), default="embedded")
    args = ap.parse_args()
    assets = tiny_assets()
    config: dict[str, Any] = {
        "model": {
            "model_name_or_path": str(assets["model"]),
            "tokenizer_name_or_path": str(assets["tokenizer_extended"]),
        },
        "data": {"dataset_dir": str(assets["corpus"])},
        "training": {"max_steps": args.steps},
    }
    # One thread per run everywhere (the worker would pick cores // runs): equal footing.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    tmp = Path(tempfile.mkdtemp(prefix="cpt-bench-overhead-"))
    panel = start_panel(
        tmp / "data",
        broker_url=REDIS_URL if args.broker == "redis" else None,
        allowed_roots=[assets["root"]],
        # The default heartbeat (the test helper's is 1 s).
        extra_env={"OMP_NUM_THREADS": "1", "CPT_HEARTBEAT_SECONDS": "5"},
    )
    try:
        worker = panel.start_worker(concurrency=1)
        pids = [panel.procs[0].pid, worker.pid]
        # Idle baseline, then a warm-up run (first imports, page cache) that is not counted.
        time.sleep(3)
        idle0, t_idle = cpu_seconds(pids), time.perf_counter()
        time.sleep(10)
        idle_pct = 100 * (cpu_seconds(pids) - idle0) / (time.perf_counter() - t_idle)
        warm = panel_run(panel, config, pids)
        with panel.client() as c:
            cmd = c.get(f"/api/runs/{warm['id']}/command").json()["argv"]
        run_dir = str((panel.data_dir / "runs" / str(warm["id"])).resolve())
        # What the worker adds on launch (worker/attempt/local.py): its own interpreter and, on a
        # CPU-only box, --use_cpu.
        cmd = [sys.executable, *cmd[1:]]
        if "--use_cpu" not in cmd and not _has_gpu():
            cmd.append("--use_cpu")
        script = next(i for i, a in enumerate(cmd) if a.endswith("pretrain.py"))
        print("argv:", " ".join(cmd), flush=True)
        rows: dict[str, list[Any]] = {"bare": [], "argv": [], "panel": []}
        for i in range(args.repeats):
            bare = relocate([sys.executable, *cmd[script:]], run_dir, tmp / f"bare-{i}")
            rows["bare"].append(direct_run(bare, env))
            rows["argv"].append(direct_run(relocate(cmd, run_dir, tmp / f"argv-{i}"), env))
            rows["panel"].append(panel_run(panel, config, pids))
            print(f"round {i + 1}: bare {rows['bare'][-1]:.2f} s, argv {rows['argv'][-1]:.2f} s, "
                  f"panel {rows['panel'][-1]['wall']:.2f} s", flush=True)  # fmt: skip
    finally:
        panel.stop()

    def stat(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} s ({min(xs):.2f}-{max(xs):.2f})"

    panel_wall = [r["wall"] for r in rows["panel"]]
    ratios = [p / a for p, a in zip(panel_wall, rows["argv"], strict=True)]
    cpu = sum(r["cpu"] for r in rows["panel"])
    cpu_wall = sum(r["cpu_wall"] for r in rows["panel"])
    print(f"\n{args.repeats} x {args.steps} steps of the tiny demo (a log event every 2 steps), "
          f"broker {args.broker}, load {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| what | result | target |\n| --- | --- | --- |")
    print(f"| bare `python worker/pretrain.py`, wall | {stat(rows['bare'])} | - |")
    print(f"| exact argv (torchrun ...), wall | {stat(rows['argv'])} | - |")
    print(f"| through the panel (POST -> succeeded), wall | {stat(panel_wall)} | - |")
    print(f"| ratio panel / argv, median (per round min-max) | {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f}) | <= 1.03 |")  # fmt: skip
    a_b = statistics.median(rows["argv"]) / statistics.median(rows["bare"])
    print(f"| ratio argv / bare, median | {a_b:.3f} | - |")
    s2r = [r["submit_to_running"] for r in rows["panel"]]
    e2s = [r["exit_to_succeeded"] for r in rows["panel"]]
    print(
        f"| submit -> running, median (max) | {statistics.median(s2r):.3f} s ({max(s2r):.3f}) | - |"
    )
    print(f"| training exit -> succeeded, median (max) | {statistics.median(e2s):.3f} s "
          f"({max(e2s):.3f}) | - |")  # fmt: skip
    print(f"| API + worker CPU while training | {cpu / args.repeats:.2f} s per run over "
          f"{cpu_wall / args.repeats:.1f} s = {100 * cpu / cpu_wall:.2f} % of one core | <= 3 % |")  # fmt: skip
    api = sum(r["api_cpu"] for r in rows["panel"])
    print(f"| ... of which the API | {100 * api / cpu_wall:.2f} % | - |")
    print(f"| API + worker CPU, idle baseline | {idle_pct:.2f} % of one core | - |")
    print(
        f"| API + worker CPU while training, above idle | {100 * cpu / cpu_wall - idle_pct:.2f} % | - |"
    )


if __name__ == "__main__":
    main()
