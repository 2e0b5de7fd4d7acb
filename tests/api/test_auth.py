"""Every route but /api/health needs a token; the worker and API tokens are not interchangeable."""

from __future__ import annotations

import re
import time

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from tests.support.panel import Panel

PUBLIC = {"/api/health"}


def _routes() -> list[tuple[str, str]]:
    from backend.main import create_app

    out = []
    # iter_route_contexts flattens included routers (app.routes holds them lazily).
    for ctx in iter_route_contexts(create_app().routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or not (ctx.path or "").startswith("/api"):
            continue  # the static frontend (if built) is public on purpose
        path = re.sub(r"\{[^}]+\}", "x", ctx.path or "")
        out += [(method, path) for method in sorted(route.methods)]
    return out


def test_every_route_needs_a_token(api: tuple[Panel, dict]) -> None:
    panel, _ = api
    routes = _routes()
    assert len(routes) >= 25  # the enumeration really found the API
    with httpx.Client(base_url=panel.url, timeout=10) as anon:
        for method, path in routes:
            r = anon.request(method, path)
            expected = 200 if path in PUBLIC else 401
            assert r.status_code == expected, (method, path, r.status_code, r.text)
            if expected == 401:
                assert "token" in r.json()["detail"]


def test_tokens_are_not_interchangeable(api: tuple[Panel, dict]) -> None:
    panel, _ = api
    with panel.client(token=panel.worker_token) as worker, panel.client() as user:
        assert worker.get("/api/runs").status_code == 401
        assert user.post("/api/internal/workers/heartbeat", json={"name": "x"}).status_code == 401
        assert user.get("/api/runs").status_code == 200
        assert worker.post("/api/internal/workers/heartbeat", json={"name": "x"}).status_code == 200
    with panel.client(token="wrong") as bad:
        assert bad.get("/api/runs").status_code == 401


def test_sse_accepts_query_token(api: tuple[Panel, dict]) -> None:
    panel, _ = api
    with httpx.Client(base_url=panel.url, timeout=10) as anon:
        assert anon.get("/api/runs/stream", params={"token": "nope"}).status_code == 401
        with anon.stream("GET", "/api/runs/stream", params={"token": panel.token}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
    log = (panel.data_dir / "api.log").read_text()
    assert "/api/runs/stream?token=***" in log  # the request was logged ...
    assert panel.token not in log  # ... without the token


def test_the_access_log_leaves_out_accepted_worker_reports(api: tuple[Panel, dict]) -> None:
    panel, _ = api
    name = "quiet-log-worker"
    with panel.client(token=panel.worker_token) as worker, panel.client() as user:
        ok = worker.post("/api/internal/workers/heartbeat", json={"name": name})
        assert ok.status_code == 200
        refused = user.post("/api/internal/workers/heartbeat", json={"name": name})
        assert refused.status_code == 401
        assert user.get("/api/runs", params={"q": name}).status_code == 200
    # The server writes its access log line after the answer: wait for the last request's.
    deadline = time.monotonic() + 10
    while f"/api/runs?q={name}" not in (log := (panel.data_dir / "api.log").read_text()):
        assert time.monotonic() < deadline, "the user's request never reached the access log"
        time.sleep(0.05)
    heartbeats = [ln for ln in log.splitlines() if "POST /api/internal/workers/heartbeat" in ln]
    assert heartbeats, "the refused report is logged"
    assert all(" 401" in ln for ln in heartbeats), heartbeats  # accepted ones are not
