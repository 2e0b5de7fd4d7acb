"""``cpt-panel users create`` on the API's box: a user on the panel's own database, who can
then sign in; a generated password is never printed where it is not a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.api import (
    INPROC_TOKEN,
    INPROC_WORKER_TOKEN,
    client_for,
    make_assets,
    settings_for,
)

ROOT = Path(__file__).resolve().parents[2]


def _cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CPT_DATA_DIR": str(data_dir),
        "CPT_API_TOKEN": INPROC_TOKEN,
        "CPT_WORKER_TOKEN": INPROC_WORKER_TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "cpt_cli.main", "users", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_users_create_then_sign_in(tmp_path: Path) -> None:
    assets = make_assets(tmp_path / "assets")
    settings = settings_for(tmp_path, assets["root"])
    made = _cli(
        settings.resolved_data_dir,
        "create",
        "bob",
        "--role",
        "operator",
        "--password-stdin",
        stdin="bobs-password-1\n",
    )
    assert made.returncode == 0, made.stderr
    assert "bob (operator) created" in made.stdout and "bobs-password-1" not in made.stdout
    # Not a terminal and no password given: nothing is made (a generated one could not be shown).
    refused = _cli(settings.resolved_data_dir, "create", "carl")
    assert refused.returncode == 1 and "terminal" in refused.stderr
    twice = _cli(settings.resolved_data_dir, "create", "bob", "--password-stdin", stdin="x" * 12)
    assert twice.returncode == 1 and "exists" in twice.stderr
    listed = _cli(settings.resolved_data_dir, "list")
    assert "bob\toperator" in listed.stdout and "carl" not in listed.stdout
    with client_for(settings) as admin:
        browser = type(admin)(admin.app)
        r = browser.post("/api/session", json={"name": "bob", "password": "bobs-password-1"})
        assert r.status_code == 200 and r.json()["role"] == "operator", r.text
        rows = admin.get("/api/audit", params={"target": "user/bob"}).json()
        assert ("cli", "user.create") in {(row["actor"], row["action"]) for row in rows}
