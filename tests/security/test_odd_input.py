"""Odd input is a 4xx at its field, never a 500, and nothing secret reaches a log.

Found: a 500 for a path component over 255 bytes and for ``~nosuchuser/x`` in any path field;
``?%74oken=`` (an encoded parameter name) written to the access log in clear; a checkpoint's
``created_at`` without a UTC offset (not a ``date-time``); OPTIONS answering 405 with a wrong
``Allow``.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER
from cpt_contract.settings import Settings
from tests.security.conftest import WORKER
from tests.support.api import launch

ODD_PATHS = [
    "{root}/" + "a" * 256,  # under a root: the filesystem itself refuses the name
    "{root}/" + "ಕ" * 90 + "/x",  # 270 bytes in one name
    "/" + "a" * 256,
    "/" + "/".join(["d" * 200] * 25),  # longer than PATH_MAX
    "~nosuchuser/x",
    "~/x",
    "relative/x",
]


@pytest.mark.parametrize("raw", ODD_PATHS, ids=lambda p: p[:20])
def test_odd_paths_are_422_at_their_field(
    client: TestClient, assets: dict[str, Path], raw: str
) -> None:
    raw = raw.replace("{root}", str(assets["root"]))
    config = {"model": {"model_name_or_path": raw}, "data": {"eval_sets": {"x": raw}}}
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", "config", "model", "model_name_or_path"] in locs
    assert ["body", "config", "data", "eval_sets", "x", "path"] in locs
    r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [raw]}})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "params", "paths", 0]


def test_a_checkpoint_created_at_carries_its_utc_offset(
    client: TestClient, settings: Settings
) -> None:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    rid = run["id"]
    claim = client.post(
        f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "w"}, headers=WORKER
    )
    out = settings.runs_dir / rid / "output" / "checkpoint-2"
    out.mkdir(parents=True)
    (out / "trainer_state.json").write_text("{}")
    event = {"seq": 1, "kind": "checkpoint", "step": 2, "time": time.time(), "path": str(out)}
    r = client.post(
        f"/api/internal/runs/{rid}/events",
        json={"attempt": 1, "events": [event]},
        headers={**WORKER, LEASE_HEADER: claim.json()["lease"]},
    )
    assert r.status_code == 200, r.text
    for row in client.get(f"/api/runs/{rid}/checkpoints").json():
        assert datetime.fromisoformat(row["created_at"]).utcoffset() is not None, row
    for w in client.get("/api/workers").json():
        assert datetime.fromisoformat(w["last_heartbeat"]).utcoffset() is not None, w


def test_405_names_every_method_of_the_path(client: TestClient) -> None:
    for path, methods in (
        ("/api/runs", {"GET", "POST"}),
        ("/api/runs/r-x", {"GET", "PATCH", "DELETE"}),
        ("/api/internal/runs/r-x/claim", {"POST"}),
    ):
        for method in ("OPTIONS", "PUT"):
            r = client.request(method, path)
            assert r.status_code == 405, (method, path, r.status_code)
            allowed = {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"}
            assert allowed == methods, (path, r.headers["allow"])


def test_an_encoded_token_parameter_is_not_logged(tmp_path: Path) -> None:
    """Through the real server: uvicorn's access log, as an operator reads it."""
    panel, _ = launch(tmp_path)
    try:
        with panel.client(token=None) as c:
            for name in ("token", "%74oken", "TOKEN", "tok%65n"):
                c.get(f"/api/runs?{name}=SECRET-{name}-VALUE&limit=1")
        time.sleep(0.5)
        log = (panel.data_dir / "api.log").read_text(errors="replace")
        assert "/api/runs?" in log
        assert "SECRET" not in log, [line for line in log.splitlines() if "SECRET" in line]
    finally:
        panel.stop()
