"""Security over real HTTP against the real server (``python -m cpt_cli.main serve``): oversized
bodies are refused before they are read, a hostile body does not stall ``/api/health``, odd
``Last-Event-ID`` headers are ignored, and the UI is served with its security headers."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.support.api import SSEReader, create_run
from tests.support.panel import Panel

Api = tuple[Panel, dict[str, Path]]
MB = 1024 * 1024


def _raw_post(
    panel: Panel, path: str, head: dict[str, str], body: bytes, total: int
) -> tuple[bytes, float]:
    """Send the headers and start a body of ``total`` bytes; return the answer's first bytes
    and the seconds until it came (the rest of the body is never sent)."""
    url = urlsplit(panel.url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {url.netloc}",
        *(f"{k}: {v}" for k, v in head.items()),
    ]
    t0 = time.perf_counter()
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        sent = 0
        s.settimeout(0.002)
        answer = b""
        while sent < total and not answer:
            try:
                s.sendall(body)
                sent += len(body)
            except OSError:
                break  # the server closed its side: the answer is waiting
            try:
                answer = s.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
        s.settimeout(10)
        while not answer:
            try:
                answer = s.recv(4096)
            except OSError:
                break
            if not answer:
                break
    return answer, time.perf_counter() - t0


def test_a_100_mb_body_is_refused_before_it_is_read(api: Api) -> None:
    panel, _ = api
    auth = {"Authorization": f"Bearer {panel.token}", "Content-Type": "application/json"}
    declared, t_declared = _raw_post(
        panel, "/api/runs", {**auth, "Content-Length": str(100 * MB)}, b"x" * 65536, 100 * MB
    )
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    chunked, t_chunked = _raw_post(
        panel,
        "/api/runs",
        {**auth, "Transfer-Encoding": "chunked"},
        b"10000\r\n" + b"x" * 65536 + b"\r\n",
        100 * MB,
    )
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    print(
        f"\n100 MB body refused: declared {t_declared * 1000:.0f} ms, chunked {t_chunked * 1000:.0f} ms"
    )
    assert t_declared < 2 and t_chunked < 2
    with panel.client() as c:
        assert c.get("/api/health").status_code == 200


def test_health_stays_fast_under_hostile_bodies(api: Api) -> None:
    """A 1 MiB body of ~90k keys (the cap) sent over and over does not stall /api/health."""
    panel, _ = api
    hostile = b'{"preset": "tiny-demo", "config": {' + b",".join(
        b'"k%d": 1' % i for i in range(90_000)
    )
    hostile = hostile[: MB - 4] + b"}}"
    stop = threading.Event()
    sent = [0]

    def attack() -> None:
        with panel.client() as c:
            while not stop.is_set():
                c.post(
                    "/api/runs/preview",
                    content=hostile,
                    headers={"content-type": "application/json"},
                )
                sent[0] += 1

    threads = [threading.Thread(target=attack, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    lat = []
    try:
        with httpx.Client(base_url=panel.url, timeout=10) as anon:
            time.sleep(0.3)
            for _ in range(20):
                t0 = time.perf_counter()
                assert anon.get("/api/health").status_code == 200
                lat.append(time.perf_counter() - t0)
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    p50, worst = statistics.median(lat), max(lat)
    print(
        f"\n/api/health under {sent[0]} hostile 1 MiB bodies: p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms"
    )
    assert sent[0] > 0 and worst < 1.5, lat


def test_odd_last_event_ids_are_ignored(api: Api) -> None:
    panel, _ = api
    with panel.client() as c:
        run = create_run(c)
        for value in ("²".encode(), "١٢٣".encode(), b"9" * 40, b"-1", b"\xff"):
            headers = {"Last-Event-ID": value}
            with c.stream(
                "GET", f"/api/runs/{run['id']}/stream", params={"ping": 1}, headers=headers
            ) as r:
                assert r.status_code in (200, 422), (value, r.status_code)
                if r.status_code == 200:
                    assert SSEReader(r).read(1)[0][0] == "status"


def test_the_ui_is_served_with_security_headers(api: Api) -> None:
    panel, _ = api
    with httpx.Client(base_url=panel.url, timeout=10) as anon:
        for path in ("/", "/api/health"):
            r = anon.get(path)
            csp = r.headers.get("content-security-policy", "")
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert r.headers["x-content-type-options"] == "nosniff"
