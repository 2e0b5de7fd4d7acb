"""API-side costs, measured over real HTTP against ``python -m cpt_cli.main serve`` (SQLite).

- ingest: POST /api/internal/runs/{id}/events in batches (new rows, then the same batches again:
  the idempotent resend path);
- POST → SSE: time from the events POST returning to the metric arriving on the run's stream;
- metrics query: GET /api/runs/{id}/metrics over all stored events, downsampled to 1000 points;
- logs: POST of 4 KiB log chunks.

    python bench/bench_api_ingest.py [--events 20000] [--batch 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _panel import percentile, start_panel

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import make_assets, make_demo


def _events(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "seq": s,
            "time": 1.7e9 + s,
            "kind": "log",
            "step": s,
            "loss": 5.0 / (1 + s / 500),
            "learning_rate": 2e-4,
            "grad_norm": 1.0,
            "epoch": s / 1e4,
            "tokens_seen": 512 * s,
            "tokens_per_second": 4096.0,
        }
        for s in range(start, start + n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    assets = make_assets(tmp / "assets")
    make_demo(tmp / "data")
    panel = start_panel(tmp / "data", broker_url=None, allowed_roots=[assets["root"]])
    try:
        with panel.client() as c, panel.client(token=panel.worker_token) as w:
            run = c.post("/api/runs", json={"preset": "tiny-demo"}).json()
            rid = run["id"]
            claim = w.post(
                f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "bench"}
            )
            w.headers[LEASE_HEADER] = claim.json()["lease"]
            w.post(f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "running"})
            url = f"/api/internal/runs/{rid}/events"
            batches = [_events(s, args.batch) for s in range(1, args.events + 1, args.batch)]
            t0 = time.perf_counter()
            for b in batches:
                assert w.post(url, json={"attempt": 1, "events": b}).json()["accepted"] == len(b)
            ingest = time.perf_counter() - t0
            t0 = time.perf_counter()
            for b in batches:
                assert w.post(url, json={"attempt": 1, "events": b}).json()["accepted"] == 0
            resend = time.perf_counter() - t0

            q = []
            for _ in range(5):
                t0 = time.perf_counter()
                m = c.get(f"/api/runs/{rid}/metrics", params={"keys": "loss", "max_points": 1000})
                q.append(time.perf_counter() - t0)
            assert len(m.json()["series"]["loss"]["step"]) <= 1000

            lat: list[float] = []
            seq = args.events + 1
            arrived: dict[int, float] = {}
            ready = threading.Event()

            def listen() -> None:
                with panel.client() as s, s.stream("GET", f"/api/runs/{rid}/stream") as r:
                    ev = None
                    for line in r.iter_lines():
                        if line.startswith("event:"):
                            ev = line[6:].strip()
                            if ev == "status":
                                ready.set()
                        elif line.startswith("data:") and ev == "metric":
                            arrived[json.loads(line[5:])["seq"]] = time.perf_counter()
                            if len(arrived) >= 50:
                                return

            t = threading.Thread(target=listen, daemon=True)
            t.start()
            ready.wait(10)
            for i in range(50):
                sent = time.perf_counter()
                w.post(url, json={"attempt": 1, "events": _events(seq + i, 1)})
                deadline = time.time() + 5
                while seq + i not in arrived and time.time() < deadline:
                    time.sleep(0.0005)
                lat.append(arrived[seq + i] - sent)
            t.join(5)

            chunk = "x" * 4095 + "\n"
            t0 = time.perf_counter()
            for i in range(200):
                w.post(
                    f"/api/internal/runs/{rid}/logs",
                    json={"attempt": 1, "offset": i * 4096, "text": chunk},
                )
            logs = time.perf_counter() - t0
        n = len(batches) * args.batch
        print(
            f"ingest: {n} events in {ingest:.2f} s = {n / ingest:,.0f} events/s (batches of {args.batch})"
        )
        print(f"resend (idempotent, nothing new): {n / resend:,.0f} events/s")
        print(
            f"metrics query over {n} events -> 1000 points: median {percentile(q, 50) * 1000:.0f} ms"
        )
        print(
            f"POST -> SSE (request start to arrival): p50 {percentile(lat, 50) * 1000:.1f} ms, "
            f"p95 {percentile(lat, 95) * 1000:.1f} ms"
        )
        print(f"logs: 200 x 4 KiB chunks in {logs:.2f} s = {200 / logs:.0f} chunks/s")
    finally:
        panel.stop()


if __name__ == "__main__":
    main()
