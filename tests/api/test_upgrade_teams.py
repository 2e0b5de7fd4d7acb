"""The upgrade to users and roles, from a database made by the revision before it with runs
and a job in it: the old runs and jobs belong to the first admin, the panel's single API token
keeps working as that admin, and an operator made afterwards cannot touch them."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from backend.core.db import alembic_config, get_engine
from tests.support.api import client_for, make_assets, settings_for

TEAMS = "0014_teams"


def _before(url: str) -> str:
    """The revision before the teams migration: what a database of the release before is at."""
    down = ScriptDirectory.from_config(alembic_config(url)).get_revision(TEAMS).down_revision
    assert isinstance(down, str)
    return down


def _old_database(settings: object) -> None:
    url = settings.sqlalchemy_url  # type: ignore[attr-defined]
    command.upgrade(alembic_config(url), _before(url))
    engine = get_engine(settings)  # type: ignore[arg-type]
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        for run_id, status in (("r-old001", "succeeded"), ("r-old002", "queued")):
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, name, status, config, method, model, queue, attempt,"
                    " output_dir, created_at, updated_at, tags, note, metrics_summary)"
                    " VALUES (:id, :name, :status, :config, 'lora', 'tiny', 'nobody', 1, '',"
                    " :now, :now, '[]', '', '{}')"
                ),
                {
                    "id": run_id,
                    "name": f"old {run_id}",
                    "status": status,
                    "config": json.dumps({}),
                    "now": now,
                },
            )
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, status, params, queue, log_size, created_at,"
                " updated_at, attempt) VALUES ('j-old00001', 'scan', 'queued', '{}', 'nobody',"
                " 0, :now, :now, 1)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO experiments (id, name, spec, created_at, rungs)"
                " VALUES ('e-old001', 'old sweep', '{}', :now, '{}')"
            ),
            {"now": now},
        )


def test_upgrade_from_the_single_token_database(tmp_path: Path) -> None:
    assets = make_assets(tmp_path / "assets")
    settings = settings_for(tmp_path, assets["root"])
    _old_database(settings)
    with client_for(settings) as admin:  # the lifespan upgrades to head
        assert admin.get("/api/me").json()["name"] == "admin"
        assert admin.get("/api/me").json()["role"] == "admin"
        runs = admin.get("/api/runs").json()["items"]
        assert {r["id"]: r["owner"] for r in runs} == {"r-old001": "admin", "r-old002": "admin"}
        assert admin.get("/api/jobs/j-old00001").json()["owner"] == "admin"
        with get_engine(settings).connect() as conn:
            owner = conn.execute(sa.text("SELECT owner FROM experiments")).scalar_one()
        assert owner == "admin"
        # The first admin got a one-time password, in a 0600 file only.
        secret_file = settings.resolved_data_dir / ".admin_password"
        assert secret_file.stat().st_mode & 0o077 == 0
        r = admin.post("/api/users", json={"name": "ops", "role": "operator", "password": "p" * 12})
        assert r.status_code == 201, r.text
        op = type(admin)(admin.app)
        csrf = op.post("/api/session", json={"name": "ops", "password": "p" * 12}).json()
        refused = op.post("/api/runs/r-old002/cancel", headers={"X-CSRF-Token": csrf["csrf_token"]})
        assert refused.status_code == 403 and "belongs to admin" in refused.json()["detail"]
        # The old token still does everything it did: cancel, then the audit names the admin.
        assert admin.post("/api/runs/r-old002/cancel").status_code == 200
        rows = admin.get("/api/audit", params={"target": "run/r-old002"}).json()
        assert [(r["actor"], r["via"], r["action"]) for r in rows] == [
            ("admin", "api-token", "run.cancel")
        ]
        # And the admin can sign in with the one-time password.
        browser = type(admin)(admin.app)
        r = browser.post(
            "/api/session", json={"name": "admin", "password": secret_file.read_text().strip()}
        )
        assert r.status_code == 200 and r.json()["role"] == "admin"
