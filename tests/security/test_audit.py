"""The audit log: filters (user, action prefix, target, time with any offset), the JSON Lines
export, nothing secret in it, and no change without its row (one transaction)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from fastapi.testclient import TestClient

from backend.core.db import get_engine


def _run(client: TestClient, name: str) -> str:
    r = client.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": {}})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_filters_and_the_json_lines_export(client: TestClient) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    run_id = _run(client, "audited")
    assert client.patch(f"/api/runs/{run_id}", json={"note": "why"}).status_code == 200
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 200
    r = client.post("/api/users", json={"name": "kim", "role": "viewer", "password": "k" * 12})
    assert r.status_code == 201
    rows = client.get("/api/audit", params={"target": f"run/{run_id}"}).json()
    assert [r["action"] for r in rows] == ["run.cancel", "run.edit", "run.create"]
    edit = rows[1]
    assert edit["changes"] == {"note": {"from": "", "to": "why"}}
    assert edit["actor"] == "admin" and edit["via"] == "api-token" and edit["client"]
    assert [r["action"] for r in client.get("/api/audit", params={"action": "user."}).json()] == [
        "user.create"
    ]
    # A time with another offset means the same instant.
    later = datetime.now(UTC).astimezone(timezone(timedelta(hours=5)))
    since = start.astimezone(timezone(timedelta(hours=-7)))
    within = client.get("/api/audit", params={"since": since.isoformat()}).json()
    assert len(within) == 4
    before = client.get("/api/audit", params={"until": start.isoformat()}).json()
    assert before == []
    assert len(client.get("/api/audit", params={"until": later.isoformat()}).json()) == 4
    export = client.get("/api/audit/export", params={"user": "admin"})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [x["action"] for x in lines] == ["user.create", "run.cancel", "run.edit", "run.create"]
    assert "k" * 12 not in export.text  # the password given for kim is nowhere


def test_no_change_happens_without_its_audit_row(client: TestClient) -> None:
    assert client.get("/api/runs").json()["total"] == 0
    with get_engine(client.app.state.settings).begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
    try:
        r = client.post("/api/runs", json={"name": "unrecorded", "preset": "tiny-demo"})
        assert r.status_code == 503, r.text  # the database refused the row: nothing saved
    finally:
        with get_engine(client.app.state.settings).begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
    assert client.get("/api/runs").json()["total"] == 0  # the run went with its row
