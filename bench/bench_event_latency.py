"""Latency from a line appended to events.jsonl to its arrival in a browser's SSE stream.

Path measured (all real): the worker's shipper thread tails the file → POST
/api/internal/runs/{id}/events → database → in-process bus → GET /api/runs/{id}/stream (SSE).
The "training" is this script: it plays the worker's part for one claimed run (claim, running)
and appends events in pretrain.py's format at 10 per second, stamping each append.

Baseline: the ship interval itself — a line waits on average half an interval (at most one)
before the shipper sees it; everything above that is HTTP, database and SSE overhead.

    python bench/bench_event_latency.py [--events 100] [--intervals 0.1,0.05]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _panel import Panel, percentile, start_panel, tiny_assets

from cpt_cli.follow import sse_events
from worker.attempt.api_client import WorkerApi
from worker.attempt.shipper import RunShipper, ShipperThread

TARGET_P95_MS = 300.0


def _claimed_run(panel: Panel, assets: dict[str, Path]) -> tuple[str, str]:
    config = {
        "model": {
            "model_name_or_path": str(assets["model"]),
            "tokenizer_name_or_path": str(assets["tokenizer_extended"]),
        },
        "data": {"dataset_dir": str(assets["corpus"])},
    }
    with panel.client() as c:
        run = c.post(
            "/api/runs", json={"preset": "tiny-demo", "name": "latency bench", "config": config}
        ).json()
    api = WorkerApi(panel.url, panel.worker_token)
    api.claim(run["id"], 1, "bench-worker")
    api.status(run["id"], 1, "running", pid=1)
    lease = api.lease(run["id"]) or ""
    api.close()
    return str(run["id"]), lease


def measure(
    panel: Panel,
    run_id: str,
    lease: str,
    events_path: Path,
    interval: float,
    count: int,
    rate: float,
) -> list[float]:
    """Append ``count`` events; return the append → SSE receipt latencies in ms."""
    appended: dict[int, float] = {}
    received: dict[int, float] = {}
    seqs = list(range(1, count + 1))  # a fresh run and file per measurement
    ready = threading.Event()

    def listen() -> None:
        headers = {"Authorization": f"Bearer {panel.token}"}
        with httpx.Client(base_url=panel.url + "/api", headers=headers) as client:
            for event, data in sse_events(client, f"/runs/{run_id}/stream"):
                now = time.perf_counter()
                if event == "status":
                    ready.set()
                elif event == "metric":
                    seq = json.loads(data)["seq"]
                    received.setdefault(seq, now)
                    if seq == seqs[-1]:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    api = WorkerApi(panel.url, panel.worker_token)
    api.use_lease(run_id, lease)
    shipper = RunShipper(
        api,
        run_id,
        1,
        events_path,
        events_path.with_suffix(".log"),
        events_offset=events_path.stat().st_size if events_path.exists() else 0,
    )
    thread = ShipperThread(shipper, interval)
    thread.start()
    time.sleep(interval * 2)  # the shipper is in its steady loop
    with events_path.open("a") as f:
        for i, seq in enumerate(seqs):
            event: dict[str, Any] = {
                "seq": seq,
                "time": time.time(),
                "kind": "log",
                "step": seq,
                "loss": 5.0 - i / count,
                "learning_rate": 1e-3,
                "grad_norm": 1.0,
                "epoch": 0.01 * i,
                "tokens_seen": 256 * seq,
                "tokens_per_second": 1000.0,
            }
            f.write(json.dumps(event) + "\n")
            f.flush()
            appended[seq] = time.perf_counter()
            time.sleep(1 / rate)
    listener.join(timeout=10)
    thread.stop()
    api.close()
    missing = [s for s in seqs if s not in received]
    if missing:
        raise SystemExit(f"{len(missing)} events never arrived over SSE (first: {missing[:5]})")
    return [(received[s] - appended[s]) * 1000 for s in seqs]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100, help="events per ship interval tested")
    parser.add_argument("--rate", type=float, default=10.0, help="events appended per second")
    parser.add_argument(
        "--intervals",
        default="0.1,0.05",
        help="ship intervals to compare (s); the first is the default",
    )
    args = parser.parse_args()
    assets = tiny_assets()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        panel = start_panel(Path(tmp) / "data", broker_url=None, allowed_roots=[assets["root"]])
        try:
            for interval in (float(x) for x in args.intervals.split(",")):
                run_id, lease = _claimed_run(panel, assets)
                events_path = Path(tmp) / f"{run_id}-events.jsonl"
                lat = measure(panel, run_id, lease, events_path, interval, args.events, args.rate)
                rows.append((interval, lat))
        finally:
            panel.stop()
    print(
        f"\nevents.jsonl append → SSE receipt, {args.events} events at {args.rate:g}/s per row (ms)"
    )
    print(
        f"{'ship interval':>14} {'baseline mean':>14} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8} {'overhead':>9}  p95<300ms"
    )
    for interval, lat in rows:
        base = interval * 1000 / 2  # mean wait for the next ship tick
        mean = sum(lat) / len(lat)
        p95 = percentile(lat, 95)
        print(
            f"{interval * 1000:>12.0f}ms {base:>12.0f}ms {percentile(lat, 50):>8.1f} {p95:>8.1f} "
            f"{max(lat):>8.1f} {mean:>8.1f} {mean - base:>+8.1f}  {'yes' if p95 < TARGET_P95_MS else 'NO'}"
        )


if __name__ == "__main__":
    main()
