"""Each role on each route answers as the permission table of docs/security.md says, and every
call of the matrix that changed something left its row in the audit log.

The routes come from the live OpenAPI schema: a route without a row in the table fails here.
A real server (``python -m cpt_cli.main serve``) with three people: the first admin (through
the panel's single API token), an operator and a viewer (each with a personal token made from
a browser session), and anonymous callers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import claimed_run, launch
from tests.support.panel import Panel

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
_ROW = re.compile(r"^\| `([A-Z]+)` \| `(/api/[^`]*)` \| ([a-z ()]+) \|$")
RANK = {"viewer": 0, "operator": 1, "admin": 2}
PASSWORDS = {"op1": "operator-password-1", "vi1": "viewer-password-1"}


def permission_table() -> dict[tuple[str, str], str]:
    rows = {}
    for line in DOCS.read_text().splitlines():
        if m := _ROW.match(line.strip()):
            rows[(m.group(1), m.group(2))] = m.group(3).strip()
    return rows


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    panel, assets = launch(tmp_path_factory.mktemp("roles"))
    try:
        with panel.client() as admin:
            for name, role in (("op1", "operator"), ("vi1", "viewer")):
                r = admin.post(
                    "/api/users", json={"name": name, "role": role, "password": PASSWORDS[name]}
                )
                assert r.status_code == 201, r.text
        tokens = {"admin": panel.token}
        for name in ("op1", "vi1"):
            with httpx.Client(base_url=panel.url, timeout=30) as browser:
                r = browser.post("/api/session", json={"name": name, "password": PASSWORDS[name]})
                assert r.status_code == 200, r.text
                csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
                r = browser.post("/api/tokens", json={"name": "matrix"}, headers=csrf)
                assert r.status_code == 201, r.text
                tokens[name] = r.json()["token"]
        yield {"panel": panel, "assets": assets, "tokens": tokens}
    finally:
        panel.stop()


def _openapi_routes(panel: Panel) -> list[tuple[str, str]]:
    with panel.client() as c:
        spec = c.get("/openapi.json").json()
    return [(m.upper(), path) for path, ops in spec["paths"].items() for m in ops]


def test_every_route_has_a_row_in_the_permission_table(teams: dict[str, Any]) -> None:
    table = permission_table()
    routes = _openapi_routes(teams["panel"])
    assert len(routes) >= 45  # the schema really was read
    missing = [f"{m} {p}" for m, p in routes if (m, p) not in table]
    assert not missing, f"routes without a row in docs/security.md's permission table: {missing}"
    stale = [f"{m} {p}" for m, p in table if (m, p) not in routes]
    assert not stale, f"rows of docs/security.md for routes that no longer exist: {stale}"


def _experiment(assets: dict[str, Path]) -> dict[str, Any]:
    held = assets["root"] / "heldout"
    held.mkdir(exist_ok=True)
    (held / "kn.txt").write_text("ಕನ್ನಡ ಪಠ್ಯ ಒಂದು\n" * 5)
    return {
        "name": "matrix sweep",
        "preset": "tiny-demo",
        "base": {"data": {"eval_sets": {"kn": str(held / "kn.txt")}}, "launch": {"queue": "mx"}},
        "axes": {"training.learning_rate": [1e-4, 2e-4]},
        "target": "kn",
        "budget": {"steps": 20},
    }


CHANNEL = {"name": "matrix hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}


def _body(method: str, path: str, who: str, assets: dict[str, Path]) -> Any:
    if method == "POST" and path == "/api/notifications/channels":
        return {**CHANNEL, "name": f"hook of {who}"}
    if method == "POST" and path in ("/api/experiments", "/api/experiments/preview"):
        return _experiment(assets)
    if method == "POST" and path == "/api/runs":
        return {"preset": "tiny-demo", "config": {"launch": {"queue": "matrix-nobody"}}}
    if path == "/api/runs/preview":
        return {"preset": "tiny-demo", "config": {}}
    if method == "POST" and path == "/api/jobs":
        return {"kind": "scan", "params": {"paths": [str(assets["corpus"])]}, "queue": "matrix"}
    if method == "POST" and path == "/api/tokens":
        return {"name": f"made-by-{who}"}
    if method == "POST" and path == "/api/users":
        return {"name": f"new-by-{who}", "role": "viewer"}
    if method == "PATCH" and path == "/api/users/{name}":
        return {"max_queued_runs": 50}
    if method == "PATCH" and path == "/api/runs/{run_id}":
        return {"note": f"edited by {who}"}
    if path == "/api/me/password":
        return {"current": "not-the-password", "new": "y" * 12}  # 422 at "current"
    if path == "/api/session" and method == "POST":
        return {"name": "vi1", "password": PASSWORDS["vi1"]}  # anyone may sign in
    if method in ("POST", "PUT", "PATCH"):
        return {}
    return None


def _call(panel: Panel, token: str | None, method: str, path: str, body: Any) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=panel.url, timeout=30, headers=headers) as c:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        with c.stream(method, path, **kwargs) as r:
            detail = ""
            if r.headers.get("content-type", "").startswith("application/json"):
                detail = r.read().decode()
            return r.status_code, detail


def _last_audit_id(panel: Panel) -> int:
    with panel.client() as c:
        rows = c.get("/api/audit", params={"limit": 1}).json()
    return rows[0]["id"] if rows else 0


def test_each_role_gets_what_the_table_says_and_every_change_is_audited(
    teams: dict[str, Any],
) -> None:
    panel, assets, tokens = teams["panel"], teams["assets"], teams["tokens"]
    table = permission_table()
    run = claimed_run(panel, queue="matrix-nobody", name="admin's run")  # owned by the admin
    doomed = claimed_run(panel, queue="matrix-nobody", name="admin's run to delete")
    with panel.client() as admin:  # the worker's claim and status report are recorded too
        rows = admin.get("/api/audit", params={"target": f"run/{run['id']}"}).json()
    assert {(r["actor"], r["via"], r["action"]) for r in rows} >= {
        ("w1", "worker", "run.claim"),
        ("w1", "worker", "run.status"),
    }, rows
    with panel.client() as admin:
        r = admin.post("/api/jobs", json=_body("POST", "/api/jobs", "setup", assets))
        assert r.status_code == 201, r.text
        job = r.json()["id"]
        assert r.json()["owner"] == "admin"
        r = admin.post("/api/tokens", json={"name": "the admin's own"})
        assert r.status_code == 201, r.text
        admins_token = str(r.json()["id"])  # others: 404 (not theirs); the admin revokes it
        r = admin.post("/api/experiments", json=_experiment(assets))
        assert r.status_code == 201, r.text
        assert r.json()["owner"] == "admin"
        experiment = r.json()["id"]
        r = admin.post("/api/notifications/channels", json=CHANNEL)
        assert r.status_code == 201, r.text
        channel = r.json()["id"]
    values = {
        "run_id": run["id"],
        "job_id": job,
        "name": "vi1",
        "token_id": admins_token,
        "exp_id": experiment,
        "channel_id": channel,
    }

    def concrete(path: str) -> str:
        out = path
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return out.replace("/checkpoints/vi1", "/checkpoints/checkpoint-1")

    # Deletes last (they take the target away), the admin after the others on each route.
    routes = sorted(_openapi_routes(panel), key=lambda mp: mp[0] == "DELETE")
    unaudited, wrong = [], []
    for method, path in routes:
        who_may = table[(method, path)]
        target = concrete(path)
        if method == "DELETE" and path == "/api/runs/{run_id}":
            target = target.replace(run["id"], doomed["id"])
        for who in ("anonymous", "vi1", "op1", "admin"):
            token = tokens.get(who)
            body = _body(method, path, who, assets)
            before = _last_audit_id(panel)
            status, detail = _call(panel, token, method, target, body)
            if who_may == "anyone":
                allowed = True
            elif who_may == "worker" or who == "anonymous":
                allowed = False
            else:
                needed = who_may.split()[0]
                role = {"vi1": "viewer", "op1": "operator", "admin": "admin"}[who]
                allowed = RANK[role] >= RANK[needed]
                if who_may.endswith("(own)") and role == "operator":
                    # The target is the admin's: refused, naming its owner.
                    if status != 403 or "belongs to admin" not in detail:
                        wrong.append((who, method, path, status, detail[:200]))
                    continue
            if allowed:
                ok = status not in (401, 403) and status < 500
            elif who_may == "worker":
                # Other tokens are wrong worker tokens: 401, or 429 once they filled the bucket.
                ok = status in (401, 429)
            elif who == "anonymous":
                ok = status == 401
            else:
                ok = status == 403 and "role" in detail
            if not ok:
                wrong.append((who, method, path, status, detail[:200]))
            changed = method != "GET" and 200 <= status < 300 and not path.endswith("/preview")
            if changed:
                with panel.client() as admin:
                    rows = admin.get("/api/audit", params={"limit": 20}).json()
                actor = "vi1" if path == "/api/session" and method == "POST" else who
                mine = [row for row in rows if row["id"] > before and row["actor"] == actor]
                if not mine:
                    unaudited.append((who, method, path, status))
    assert not wrong, "\n".join(map(str, wrong))
    assert not unaudited, f"calls that changed something without an audit row: {unaudited}"


def test_an_operator_changes_its_own_runs_and_jobs(teams: dict[str, Any]) -> None:
    panel, assets, tokens = teams["panel"], teams["assets"], teams["tokens"]
    with panel.client(token=tokens["op1"]) as op:
        r = op.post("/api/runs", json=_body("POST", "/api/runs", "op1", assets))
        assert r.status_code == 201, r.text
        assert r.json()["owner"] == "op1"
        run_id = r.json()["id"]
        assert op.patch(f"/api/runs/{run_id}", json={"note": "mine"}).status_code == 200
        r = op.post(f"/api/runs/{run_id}/cancel")
        assert r.status_code == 200, r.text
        r = op.post("/api/jobs", json=_body("POST", "/api/jobs", "op1", assets))
        assert r.status_code == 201 and r.json()["owner"] == "op1", r.text
        assert op.post(f"/api/jobs/{r.json()['id']}/cancel").status_code == 200
        assert op.delete(f"/api/runs/{run_id}").status_code == 204
    with panel.client(token=tokens["vi1"]) as viewer:
        r = viewer.post("/api/runs", json=_body("POST", "/api/runs", "vi1", assets))
        assert r.status_code == 403
        assert "operator" in r.json()["detail"] and "viewer" in r.json()["detail"]
