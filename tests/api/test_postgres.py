"""The real server on PostgreSQL (CPT_DATABASE_URL): the whole run lifecycle over HTTP."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import create_run, launch, worker_client
from tests.support.panel import Panel

pytestmark = pytest.mark.postgres
PG_ADMIN = os.environ.get("CPT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module")
def pg_panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Panel]:
    import psycopg

    name = f"cpt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    panel, _ = launch(tmp_path_factory.mktemp("pg"), extra_env={"CPT_DATABASE_URL": url})
    try:
        yield panel
    finally:
        panel.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_lifecycle_on_postgres(pg_panel: Panel) -> None:
    panel = pg_panel
    assert not (panel.data_dir / "cpt-panel.db").exists()  # really not SQLite
    events = [{"seq": 1, "time": 1.0, "kind": "start", "step": 0, "max_steps": 40}]
    events += [
        {
            "seq": 1 + i,
            "time": 1.0 + i,
            "kind": "log",
            "step": i,
            "loss": 4.0 - i / 10,
            "tokens_seen": 64 * i,
            "tokens_per_second": 64.0,
            "nan": float("nan"),
        }
        for i in range(1, 11)
    ]
    ckpt = str(panel.data_dir / "runs" / "x" / "checkpoint-10")
    events.append(
        {
            "seq": 12,
            "time": 12.0,
            "kind": "checkpoint",
            "step": 10,
            "path": ckpt,
            "name": "checkpoint-10",
        }
    )
    events.append(
        {"seq": 13, "time": 13.0, "kind": "sample", "step": 10, "set": "kn", "prompt": "ಕ",
         "text": "ನ್ನಡ", "mode": "greedy"}
    )  # fmt: skip
    with panel.client() as c, worker_client(panel) as w:
        assert c.get("/api/health").json()["database"] == "ok"
        run = create_run(c)
        rid = run["id"]
        claim = w.post(f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "pg"})
        w.headers[LEASE_HEADER] = claim.json()["lease"]
        # The checkpoint (before the sample): directly in its output dir (anything else is refused).
        events[-2]["path"] = str(
            panel.data_dir.resolve() / "runs" / rid / "output" / "checkpoint-10"
        )
        twice = w.post(f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "pg"})
        w.post(f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "running"})
        # json.dumps writes NaN (as pretrain.py's json.dumps would); httpx's json= refuses it.
        body = json.dumps({"attempt": 1, "events": events})
        headers = {"content-type": "application/json"}
        ship = f"/api/internal/runs/{rid}/events"
        first = w.post(ship, content=body, headers=headers).json()
        again = w.post(ship, content=body, headers=headers).json()
        log = w.post(
            f"/api/internal/runs/{rid}/logs", json={"attempt": 1, "offset": 0, "text": "o\x00k\n"}
        ).json()
        shown = c.get(f"/api/runs/{rid}").json()
        stored = c.get(f"/api/runs/{rid}/events").json()
        metrics = c.get(f"/api/runs/{rid}/metrics", params={"keys": "loss"}).json()
        ckpts = c.get(f"/api/runs/{rid}/checkpoints").json()
        samples = c.get(f"/api/runs/{rid}/samples", params={"step": 10}).json()
        starts = c.get(f"/api/runs/{rid}/events", params={"kind": "start"}).json()
        cancel = c.post(f"/api/runs/{rid}/cancel").json()
        w.post(f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "cancelled"})
        resumed = c.post(f"/api/runs/{rid}/resume", json={"checkpoint": "checkpoint-10"}).json()
        listed = c.get("/api/runs", params={"q": rid}).json()
        nul = c.post("/api/runs", json={"preset": "tiny-demo", "name": "a\x00b"})
        huge = w.post(f"/api/internal/runs/{rid}/claim", json={"attempt": 2**40, "worker": "w"})
    assert claim.status_code == 200 and twice.status_code == 409
    assert (first["accepted"], again["accepted"], log["accepted_until"]) == (13, 0, 4)
    assert samples["steps"] == [10] and samples["samples"][0]["text"] == "ನ್ನಡ"
    assert [e["kind"] for e in starts] == ["start"]
    assert shown["step"] == 10 and shown["tokens_seen"] == 640 and shown["loss"] == 3.0
    assert len(stored) == 13 and stored[1]["data"]["nan"] == "NaN"
    assert metrics["series"]["loss"]["step"] == list(range(1, 11))
    assert [c["name"] for c in ckpts] == ["checkpoint-10"] and not ckpts[0]["exists"]
    assert cancel["status"] == "cancelling"
    assert resumed["status"] == "queued" and resumed["attempt"] == 2
    assert listed["total"] == 1
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"][0]["msg"]
    assert huge.status_code == 422


def test_concurrent_claims_on_postgres(pg_panel: Panel) -> None:
    """Row locks (SELECT ... FOR UPDATE) make exactly one of eight racing claims win."""
    from concurrent.futures import ThreadPoolExecutor

    with pg_panel.client() as c:
        rid = create_run(c)["id"]

    def claim(i: int) -> int:
        with worker_client(pg_panel) as w:
            body = {"attempt": 1, "worker": f"racer-{i}"}
            return w.post(f"/api/internal/runs/{rid}/claim", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(claim, range(8)))
    assert codes == [200] + [409] * 7
