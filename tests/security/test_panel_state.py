"""The panel's own state (its keys, tokens, database, broker and caches) is never a user's path.

Found: the data dir was an allowed root, so a scan job of ``<data>/.lease_key`` answered the key
in its result's first lines, and ``.worker_token``, ``.api_token`` and the database were
accepted the same way by every path field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.core.security import lease_for
from cpt_contract.settings import Settings
from tests.security.conftest import client_for, settings_for

#: The files and folders a running panel keeps in its data dir (relative to it).
STATE = (".lease_key", ".worker_token", ".api_token", "cpt-panel.db", "broker", "cache")


def _state_paths(settings: Settings) -> list[Path]:
    data = settings.resolved_data_dir
    lease_for(settings, "r-any", 1)  # the API's lease key, made by a run's first claim
    for name in (".worker_token", ".api_token"):
        (data / name).write_text("secret-token-value\n")
    for name in ("broker", "cache"):
        (data / name).mkdir(exist_ok=True)
        (data / name / "a.txt").write_text("panel state\n")
    paths = [data / name for name in STATE]
    assert all(p.exists() for p in paths), [p for p in paths if not p.exists()]
    return paths


def _run_fields(path: str) -> list[tuple[dict[str, Any], list[str | int]]]:
    """Every path field of a run config set to ``path``, with the loc its 422 must name."""
    loc: list[str | int] = ["body", "config"]
    return [
        ({"model": {"model_name_or_path": path}}, [*loc, "model", "model_name_or_path"]),
        ({"model": {"tokenizer_name_or_path": path}}, [*loc, "model", "tokenizer_name_or_path"]),
        ({"data": {"dataset_dir": path}}, [*loc, "data", "dataset_dir"]),
        ({"data": {"train_file": path}}, [*loc, "data", "train_file"]),
        ({"data": {"eval_sets": {"x": path}}}, [*loc, "data", "eval_sets", "x", "path"]),
        ({"data": {"data_sources": [{"path": path}]}}, [*loc, "data", "data_sources", 0, "path"]),
    ]


def _refused_at(r: Any, loc: list[str | int]) -> str:
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    found = [e for e in errors if e["loc"] == loc]
    assert found, (loc, errors)
    return str(found[0]["msg"])


def test_no_path_field_or_job_accepts_the_panels_own_state(
    client: TestClient, settings: Settings
) -> None:
    for path in _state_paths(settings):
        for config, loc in _run_fields(str(path)):
            r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
            msg = _refused_at(r, loc)
            assert "secret-token-value" not in r.text
            assert "panel's own state" in msg or "outside the allowed roots" in msg, msg
        r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(path)]}})
        _refused_at(r, ["body", "params", "paths", 0])
        r = client.post(
            "/api/jobs",
            json={"kind": "tokenizer", "params": {"base": str(path), "corpus": [str(path)]}},
        )
        _refused_at(r, ["body", "params", "base"])
        _refused_at(r, ["body", "params", "corpus", 0])
    assert client.get("/api/jobs").json() == []
    assert client.get("/api/runs").json()["total"] == 0


def test_a_root_that_holds_the_data_dir_still_keeps_the_state_out(tmp_path: Path) -> None:
    """CPT_ALLOWED_ROOTS=/ (or the data dir's parent): the state is refused by what it is."""
    settings = settings_for(tmp_path, tmp_path)
    with client_for(settings) as client:
        for path in _state_paths(settings):
            r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(path)]}})
            assert "panel's own state" in _refused_at(r, ["body", "params", "paths", 0])
            # The worker's own check (before it starts anything) says the same.
            from cpt_contract.roots import PathRefused, check_user_path

            with pytest.raises(PathRefused, match="panel's own state"):
                check_user_path(str(path), settings.roots)
        # ... and a link from an allowed folder into the state is refused where it stands.
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        (corpus / "a.txt").write_text("text\n")
        (corpus / "key.txt").symlink_to(settings.resolved_data_dir / ".lease_key")
        r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(corpus)]}})
        assert "key.txt" in _refused_at(r, ["body", "params", "paths", 0])
        # The pickers never offer the state's folders.
        for kind in ("dataset", "model", "tokenizer"):
            offered = [f["path"] for f in client.get("/api/files", params={"kind": kind}).json()]
            data = str(settings.resolved_data_dir)
            assert not [
                p
                for p in offered
                if p.startswith(data)
                and not p.startswith(str(settings.runs_dir))
                and not p.startswith(str(settings.jobs_dir))
                and not p.startswith(str(settings.demo_dir))
            ], offered


def test_what_users_made_in_the_data_dir_stays_usable(
    client: TestClient, settings: Settings
) -> None:
    """Run outputs, job outputs (an extended tokenizer) and the demo are the users' own."""
    tok = settings.jobs_dir / "j-1" / "tokenizer"
    tok.mkdir(parents=True)
    (tok / "tokenizer.json").write_text("{}")
    config = {"model": {"tokenizer_name_or_path": str(tok)}}
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 200, r.text
    demo = settings.demo_dir / "corpus"
    r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(demo)]}})
    assert r.status_code == 201, r.text
