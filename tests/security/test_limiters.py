"""Wrong tokens are limited per real client address, and never stop the worker's reports.

Found: the wrong-token limit trusted ``X-Forwarded-For`` from loopback (300 guesses in 1.2 s, none
limited), and shared its bucket with the worker's reports (618 of the worker's event posts
refused with 429 after wrong-token tries from the same address).
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER
from tests.security.conftest import WORKER
from tests.support.api import launch


def _guess(panel_url: str, n: int, forwarded: str | None = None) -> Counter[int]:
    codes: Counter[int] = Counter()
    with httpx.Client(base_url=panel_url, timeout=30) as c:
        for i in range(n):
            headers = {"Authorization": f"Bearer guess-{uuid.uuid4().hex}"}
            headers["X-Forwarded-For"] = forwarded or f"203.0.113.{i % 250 + 1}"
            codes[c.get("/api/runs", headers=headers).status_code] += 1
    return codes


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    """Through the real server (uvicorn applies the proxy headers before the app)."""
    panel, _ = launch(tmp_path / "a")
    try:
        codes = _guess(panel.url, 60)
        assert codes[429] >= 30 and codes[401] <= 21, codes  # all counted on 127.0.0.1
    finally:
        panel.stop()
    trusted, _ = launch(tmp_path / "b", {"CPT_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        codes = _guess(trusted.url, 60)  # a proxy's clients: each address its own bucket
        assert codes == Counter({401: 60}), codes
        codes = _guess(trusted.url, 30, forwarded="198.51.100.9")  # one client behind it
        assert codes[429] >= 5, codes
    finally:
        trusted.stop()


def test_wrong_tokens_never_stop_the_workers_reports(client: TestClient) -> None:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    claim = client.post(
        f"/api/internal/runs/{run['id']}/claim", json={"attempt": 1, "worker": "w"}, headers=WORKER
    )
    assert claim.status_code == 200, claim.text
    lease = {**WORKER, LEASE_HEADER: claim.json()["lease"]}
    # Guessers on both kinds of route, from the worker's own address, until they are limited.
    for path in ("/api/runs", f"/api/internal/runs/{run['id']}/status"):
        codes = [
            client.post(
                path, json={}, headers={"Authorization": "Bearer nope-0123456789"}
            ).status_code
            for _ in range(30)
        ]
        assert 429 in codes, codes
    # The worker, same address, right token: every report is taken.
    for seq in range(1, 41):
        event = {"seq": seq, "kind": "log", "step": seq, "time": 1.0 + seq, "loss": 1.0}
        r = client.post(
            f"/api/internal/runs/{run['id']}/events",
            json={"attempt": 1, "events": [event]},
            headers=lease,
        )
        assert r.status_code == 200, (seq, r.status_code, r.text)
    # A user's right token from that address is still limited: a guesser learns nothing.
    assert client.get("/api/runs").status_code == 429
