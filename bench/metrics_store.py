"""The metrics store, ours against MLflow's tracking server, on the same data and machine.

Ours: ``python -m cpt_cli.main serve`` (SQLite, then PostgreSQL), fed through the worker's
ingest route (``POST /api/internal/runs/{id}/events``, batches of 200 events of 5 keys).
MLflow: ``mlflow server`` on SQLite, loopback, installed by this script into its own virtualenv
under ``~/.cache/cpt-bench`` (never a dependency of the project), fed with ``log-batch``
(1,000 metrics per call). Both get 5 runs x 20,000 steps x 5 keys; ours also one run of
200,000 steps x 5 keys (1 M points) and one of 2,000 steps (10 k points, the baseline the 1 M
query is compared with).

Timed (p50/p95 over ``--reps`` calls): one key's full history (MLflow ``get-history``), the
1,000-point downsampled query of one key and of all keys (MLflow
``get-history-bulk-interval``, one call per key); on the 1 M run also the API's memory during
the query (RSS above idle, sampled every 5 ms, sequential and 4 concurrent) and the run page in
Chromium until its charts are drawn.

    python bench/metrics_store.py              # the full sizes (~4 min on the 2-core box, idle)
    python bench/metrics_store.py --quick      # small sizes, to develop the script
    python bench/metrics_store.py --no-mlflow --no-postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
from _panel import ROOT, percentile, start_panel

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import make_assets, make_demo
from tests.support.panel import free_port

MLFLOW_VERSION = "3.17.0"
CACHE = Path(os.environ.get("CPT_BENCH_CACHE", Path.home() / ".cache" / "cpt-bench"))
KEYS = ("loss", "learning_rate", "grad_norm", "tokens_per_second", "epoch")
PG_ADMIN = os.environ.get("CPT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def values(step: int) -> dict[str, float]:
    # A falling loss with a spike every 997 steps (the downsampled chart must keep it).
    spike = 4.0 if step % 997 == 0 else 1.0
    return {
        "loss": spike * 5.0 / (1 + step / 500) + (step * 7919 % 101) / 1000,
        "learning_rate": 2e-4 * min(1.0, step / 1000),
        "grad_norm": 1.0 + (step * 104729 % 97) / 97,
        "tokens_per_second": 4096.0 + step % 13,
        "epoch": step / 1e4,
    }


def ms(xs: list[float]) -> str:
    return f"{percentile(xs, 50) * 1000:.1f} / {percentile(xs, 95) * 1000:.1f}"


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    fn()  # warm (connection, caches): what a chart's second load sees
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class RssSampler:
    """Peak RSS of a process (and its children) while running."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)

    def rss(self) -> int:
        procs = [self.proc, *self.proc.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._t.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._t.join()


# --- ours ------------------------------------------------------------------------------------


class Ours:
    def __init__(self, tmp: Path, database_url: str | None) -> None:
        assets = make_assets(tmp / "assets")
        make_demo(tmp / "data")
        env = {"CPT_DATABASE_URL": database_url} if database_url else {}
        self.panel = start_panel(
            tmp / "data", broker_url=None, allowed_roots=[assets["root"]], extra_env=env
        )
        self.c = self.panel.client()
        self.w = self.panel.client(token=self.panel.worker_token)
        self.pid = self.panel.procs[0].pid
        self.leases: dict[str, dict[str, str]] = {}

    def new_run(self) -> str:
        rid = str(self.c.post("/api/runs", json={"preset": "tiny-demo"}).json()["id"])
        claim = self.w.post(
            f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "bench"}
        )
        assert claim.status_code == 200, claim.text
        # Reports on a run carry the lease its claim answered.
        self.leases[rid] = {LEASE_HEADER: claim.json()["lease"]}
        self.report(rid, "running")
        return rid

    def report(self, rid: str, status: str) -> None:
        r = self.w.post(
            f"/api/internal/runs/{rid}/status",
            json={"attempt": 1, "status": status},
            headers=self.leases[rid],
        )
        assert r.status_code == 200, r.text

    def ingest(self, rid: str, steps: int, batch: int = 200) -> float:
        """Seconds to ship ``steps`` log events (5 keys each) in batches of ``batch``."""
        url = f"/api/internal/runs/{rid}/events"
        # The bodies are encoded before the clock starts (as for MLflow): the server's rate is
        # measured, not this client's JSON encoding on the same 2 cores.
        bodies = [
            (
                json.dumps(
                    {
                        "attempt": 1,
                        "events": [
                            {"seq": s, "time": 1.7e9 + s, "kind": "log", "step": s, **values(s)}
                            for s in range(s0, min(s0 + batch, steps + 1))
                        ],
                    }
                ).encode(),
                min(batch, steps + 1 - s0),
            )
            for s0 in range(1, steps + 1, batch)
        ]
        headers = {**self.leases[rid], "content-type": "application/json"}
        t0 = time.perf_counter()
        for body, n in bodies:
            r = self.w.post(url, content=body, headers=headers)
            assert r.status_code == 200 and r.json()["accepted"] == n, r.text
        took = time.perf_counter() - t0
        self.report(rid, "succeeded")
        return took

    def metrics(self, rid: str, max_points: int, keys: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_points": max_points}
        if keys:
            params["keys"] = keys
        r = self.c.get(f"/api/runs/{rid}/metrics", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def stop(self) -> None:
        self.c.close()
        self.w.close()
        self.panel.stop()


def page_draw_seconds(url: str, token: str, rid: str, min_points: int) -> float:
    """Chromium: navigation start → the loss and learning-rate charts drawn with their points."""
    from playwright.sync_api import sync_playwright

    from tests.support.ui import CANVAS_INK, CHROMIUM, CHROMIUM_ARGS, TOKEN_KEY

    if not (ROOT / "frontend" / "dist" / "index.html").exists():
        raise SystemExit("the run page needs the built UI: cd frontend && npm run build")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            times = []
            for _ in range(3):
                ctx = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=url)
                ctx.add_init_script(f"localStorage.setItem({TOKEN_KEY!r}, {token!r})")
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(f"/#/runs/{rid}")
                page.wait_for_function(
                    """(n) => ['chart-loss', 'chart-lr'].every(id => {
                        const f = document.querySelector(`[data-testid=${id}]`);
                        return f && +f.getAttribute('data-points') >= n; })""",
                    arg=min_points,
                    polling="raf",
                    timeout=60_000,
                )
                times.append(time.perf_counter() - t0)
                ink = page.get_by_test_id("chart-loss").evaluate(CANVAS_INK)
                assert ink > 50, f"the loss chart has no ink ({ink})"
                ctx.close()
            return min(times)
        finally:
            browser.close()


def bench_ours(args: argparse.Namespace, tmp: Path, database_url: str | None) -> dict[str, Any]:
    ours = Ours(tmp, database_url)
    res: dict[str, Any] = {}
    try:
        runs = [ours.new_run() for _ in range(args.runs)]
        took = sum(ours.ingest(rid, args.steps) for rid in runs)
        res["ingest_points_per_s"] = args.runs * args.steps * len(KEYS) / took
        rid = runs[0]
        full = ours.metrics(rid, 100_000, "loss")
        assert len(full["series"]["loss"]["step"]) == args.steps
        res["full_history"] = timed(lambda: ours.metrics(rid, 100_000, "loss"), args.reps)
        res["ds_one"] = timed(lambda: ours.metrics(rid, 1000, "loss"), args.reps)
        res["ds_all"] = timed(lambda: ours.metrics(rid, 1000, None), args.reps)

        small = ours.new_run()
        ours.ingest(small, args.small_steps)
        res["small_ds_all"] = timed(lambda: ours.metrics(small, 1000, None), args.reps)

        big = ours.new_run()
        took = ours.ingest(big, args.big_steps)
        res["big_points"] = args.big_steps * len(KEYS)
        res["big_ingest_points_per_s"] = res["big_points"] / took
        got = ours.metrics(big, 1000, None)["series"]
        assert set(got) == set(KEYS) and all(len(s["step"]) <= 1000 for s in got.values())
        loss = got["loss"]["value"]
        assert max(loss) == max(values(s)["loss"] for s in range(1, args.big_steps + 1))
        sampler = RssSampler(ours.pid)
        idle = sampler.rss()
        with sampler:
            res["big_ds_all"] = timed(lambda: ours.metrics(big, 1000, None), args.reps)
            res["big_ds_one"] = timed(lambda: ours.metrics(big, 1000, "loss"), args.reps)
        res["big_rss_above_idle_mb"] = (sampler.peak - idle) / 2**20
        with RssSampler(ours.pid) as sampler4, ThreadPoolExecutor(4) as pool:
            t0 = time.perf_counter()
            list(pool.map(lambda _: ours.metrics(big, 1000, None), range(4)))
            res["big_4_concurrent_s"] = time.perf_counter() - t0
        res["big_rss_above_idle_4_concurrent_mb"] = (sampler4.peak - idle) / 2**20
        res["api_rss_mb"] = sampler.rss() / 2**20
        if database_url is None:
            db = ours.panel.data_dir / "cpt-panel.db"
            size = sum(p.stat().st_size for p in db.parent.glob("cpt-panel.db*"))
            total = (args.runs * args.steps + args.small_steps + args.big_steps) * len(KEYS)
            res["disk_bytes_per_point"] = size / total
        if not args.no_browser:
            res["page_draw_big_s"] = page_draw_seconds(ours.panel.url, ours.panel.token, big, 100)
            res["page_draw_small_s"] = page_draw_seconds(
                ours.panel.url, ours.panel.token, small, 100
            )
    finally:
        ours.stop()
    return res


# --- MLflow ----------------------------------------------------------------------------------


def mlflow_venv() -> Path:
    venv = CACHE / f"mlflow-{MLFLOW_VERSION}"
    exe = venv / "bin" / "mlflow"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", f"mlflow=={MLFLOW_VERSION}"]
        subprocess.run(pip, check=True)
    return exe


def bench_mlflow(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    exe = mlflow_venv()
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db = tmp / "mlflow.db"
    log = open(tmp / "mlflow.log", "ab")
    proc = subprocess.Popen(
        [str(exe), "server", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--default-artifact-root", str(tmp / "art")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    res: dict[str, Any] = {}
    base = f"http://127.0.0.1:{port}"
    try:
        c = httpx.Client(base_url=base, timeout=120)
        deadline = time.time() + 180
        while True:
            try:
                if c.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"mlflow server did not start: see {tmp / 'mlflow.log'}")
            time.sleep(0.5)
        api = "/api/2.0/mlflow"
        exp = c.post(f"{api}/experiments/create", json={"name": "bench"}).json()["experiment_id"]
        runs = [
            c.post(f"{api}/runs/create", json={"experiment_id": exp, "start_time": 0}).json()[
                "run"
            ]["info"]["run_id"]
            for _ in range(args.runs)
        ]
        per_call = 1000 // len(KEYS)  # 200 steps x 5 keys = 1,000 metrics per log-batch
        bodies = [
            json.dumps(
                {
                    "run_id": run_id,
                    "metrics": [
                        {"key": k, "value": v, "timestamp": int((1.7e9 + s) * 1000), "step": s}
                        for s in range(s0, min(s0 + per_call, args.steps + 1))
                        for k, v in values(s).items()
                    ],
                }
            ).encode()
            for run_id in runs
            for s0 in range(1, args.steps + 1, per_call)
        ]
        t0 = time.perf_counter()
        for body in bodies:  # encoded before the clock starts, as for ours
            r = c.post(
                f"{api}/runs/log-batch", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 200, r.text
        res["ingest_points_per_s"] = args.runs * args.steps * len(KEYS) / (time.perf_counter() - t0)
        rid = runs[0]

        def history() -> int:
            n, token = 0, None
            while True:
                params = {"run_id": rid, "metric_key": "loss", "max_results": 25000}
                if token:
                    params["page_token"] = token
                body = c.get(f"{api}/metrics/get-history", params=params).json()
                n += len(body.get("metrics", []))
                token = body.get("next_page_token")
                if not token:
                    return n

        assert history() == args.steps
        res["full_history"] = timed(history, args.reps)

        def interval(key: str) -> int:
            r = c.get(
                "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": rid, "metric_key": key, "max_results": 1000},
            )
            assert r.status_code == 200, r.text
            return len(r.json()["metrics"])

        assert 0 < interval("loss") <= 1000
        res["ds_one"] = timed(lambda: interval("loss"), args.reps)
        res["ds_all"] = timed(lambda: [interval(k) for k in KEYS], args.reps)
        res["server_rss_mb"] = RssSampler(proc.pid).rss() / 2**20
        size = sum(p.stat().st_size for p in tmp.glob("mlflow.db*"))
        res["disk_bytes_per_point"] = size / (args.runs * args.steps * len(KEYS))
        c.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return res


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"cpt_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


# --- report ----------------------------------------------------------------------------------


def report(args: argparse.Namespace, r: dict[str, dict[str, Any]]) -> None:
    ours, ml, pg = r.get("ours", {}), r.get("mlflow", {}), r.get("postgres", {})
    n = f"{args.runs} runs x {args.steps:,} steps x {len(KEYS)} keys"
    print(f"\n### {n} (SQLite; ratio = MLflow / ours, > 1: ours is better)\n")
    print("| what | MLflow | ours | ours, PostgreSQL | ratio |\n| --- | --- | --- | --- | --- |")

    def row(label: str, key: str, unit: str = "ms") -> None:
        def fmt(d: dict[str, Any]) -> str:
            v = d.get(key)
            if v is None:
                return "-"
            return ms(v) if isinstance(v, list) else f"{v:,.0f}"

        a, b = ml.get(key), ours.get(key)
        ratio = "-"
        if a is not None and b is not None:
            if isinstance(a, list):
                ratio = f"{percentile(a, 50) / percentile(b, 50):.1f}x"
            else:
                ratio = f"{(b / a if 'per_s' in key else a / b):.1f}x"
        print(f"| {label} ({unit}) | {fmt(ml)} | {fmt(ours)} | {fmt(pg)} | {ratio} |")

    row("ingest", "ingest_points_per_s", "points/s")
    row("one key's full history, p50 / p95", "full_history")
    row("1,000-point query, one key, p50 / p95", "ds_one")
    row("1,000-point query, all keys, p50 / p95", "ds_all")
    row("disk per point", "disk_bytes_per_point", "bytes")
    print(f"| server memory (MB) | {ml.get('server_rss_mb', 0):,.0f} | "
          f"{ours.get('api_rss_mb', 0):,.0f} | {pg.get('api_rss_mb', 0):,.0f} | - |")  # fmt: skip
    big = ours.get("big_points", 0)
    print(f"\n### one run of {big:,} points (ours) against targets\n")
    print("| what | SQLite | PostgreSQL | target | met (SQLite) |\n| --- | --- | --- | --- | --- |")

    def target(label: str, key: str, goal: str, ok: Callable[[Any], bool], f: str = "{:,.0f}") -> None:  # fmt: skip
        def fmt(d: dict[str, Any]) -> str:
            v = d.get(key)
            return "-" if v is None else (ms(v) + " ms" if isinstance(v, list) else f.format(v))

        v = ours.get(key)
        met = "-" if v is None else ("yes" if ok(v) else "NO")
        print(f"| {label} | {fmt(ours)} | {fmt(pg)} | {goal} | {met} |")

    target("ingest (points/s)", "big_ingest_points_per_s", "≥ 120,000", lambda v: v >= 120_000)
    target("1,000-point query, all keys, p50 / p95", "big_ds_all", "p95 ≤ 50 ms",
           lambda v: percentile(v, 95) <= 0.050)  # fmt: skip
    target("1,000-point query, one key, p50 / p95", "big_ds_one", "-", lambda v: True)
    for d in (ours, pg):
        if "big_ds_all" in d and "small_ds_all" in d:
            d["ratio_big_small"] = percentile(d["big_ds_all"], 50) / percentile(
                d["small_ds_all"], 50
            )
    target(f"same query on a {args.small_steps * len(KEYS):,}-point run", "small_ds_all", "-",
           lambda v: True)  # fmt: skip
    target("1 M / 10 k query time (p50)", "ratio_big_small", "≤ 2x", lambda v: v <= 2, "{:.2f}x")
    target("API memory above idle during the query (MB)", "big_rss_above_idle_mb", "≤ 50",
           lambda v: v <= 50, "{:.1f}")  # fmt: skip
    target("... 4 concurrent queries (MB)", "big_rss_above_idle_4_concurrent_mb", "-",
           lambda v: True, "{:.1f}")  # fmt: skip
    target("4 concurrent queries, wall (s)", "big_4_concurrent_s", "-", lambda v: True, "{:.3f}")
    target("run page: charts drawn in Chromium (s)", "page_draw_big_s", "≤ 1 s",
           lambda v: v <= 1.0, "{:.2f}")  # fmt: skip
    target("run page, 10 k-point run (s)", "page_draw_small_s", "-", lambda v: True, "{:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, to develop the script")
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    args.runs, args.steps, args.big_steps, args.small_steps = (
        (2, 2000, 20_000, 2000) if args.quick else (5, 20_000, 200_000, 2000)
    )
    tmp = Path(tempfile.mkdtemp(prefix="cpt-bench-metrics-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
        if not args.no_mlflow:
            results["mlflow"] = bench_mlflow(args, tmp / "mlflow")
            print("mlflow done", flush=True)
        results["ours"] = bench_ours(args, tmp / "ours", None)
        print("ours (SQLite) done", flush=True)
        if not args.no_postgres:
            url, drop = pg_database()
            try:
                pg_args = argparse.Namespace(**{**vars(args), "no_browser": True})
                results["postgres"] = bench_ours(pg_args, tmp / "pg", url)
            finally:
                drop()
            print("ours (PostgreSQL) done", flush=True)
        report(args, results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
