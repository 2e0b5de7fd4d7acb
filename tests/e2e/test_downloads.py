"""Download jobs through the real API, the real worker's job slot and a real local Hub endpoint
(olah, ``tests/support/hub.py``): a model lands under the models root with live progress read back
from the job and its provenance; a missing repo fails with a reason that says what to do; a
cancelled download leaves nothing in the pickers and the next job resumes it; bad parameters are
422s at their field; the Hub token set for the worker is never in an argv, a log or an answer."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.hub import HUB_TOKEN, LocalHub
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def _wait(panel: Panel, job_id: str, done: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with panel.client() as c:
        while True:
            job = c.get(f"/api/jobs/{job_id}").json()
            if done(job):
                return dict(job)
            assert time.monotonic() < deadline, job
            time.sleep(0.2)


def _log(panel: Panel, job_id: str) -> str:
    with panel.client() as c:
        return str(c.get(f"/api/jobs/{job_id}/log").json()["text"])


def test_bad_download_parameters_are_422s_at_their_field(hub_panel: Panel) -> None:
    cases = {
        "repo_id": {"repo_id": "not an id"},
        "revision": {"repo_id": "org/x", "revision": "--output=/etc"},
        "config": {"repo_id": "org/x", "config": "kn"},  # a model has no config
        "repo_type": {"repo_id": "org/x", "repo_type": "space"},
    }
    with hub_panel.client() as c:
        before = c.get("/api/jobs").json()
        for field, params in cases.items():
            r = c.post("/api/jobs", json={"kind": "download", "params": params})
            assert r.status_code == 422, r.text
            locs = [e["loc"] for e in r.json()["detail"]]
            assert ["body", "params", field] in locs, (field, locs)
        assert c.get("/api/jobs").json() == before


def test_a_model_downloads_with_progress_and_a_failure_says_what_to_do(
    hub_panel: Panel, local_hub: LocalHub, tiny_assets: dict[str, Path]
) -> None:
    model = tiny_assets["model"]
    commit = local_hub.add_repo(
        "org/e2e-llama", {p.name: p for p in model.iterdir() if p.is_file()}
    )
    with hub_panel.client() as c:
        r = c.post("/api/jobs", json={"kind": "download", "params": {"repo_id": "org/e2e-llama"}})
        assert r.status_code == 201, r.text
        job = _wait(hub_panel, r.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
        assert job["status"] == "succeeded", (job, _log(hub_panel, job["id"]))
        out = hub_panel.data_dir / "models" / "org--e2e-llama"
        assert job["result"]["path"] == str(out) and job["result"]["commit"] == commit
        progress = job["progress"]
        assert progress["bytes"] == progress["total_bytes"] == job["result"]["bytes"]
        assert progress["files"] == progress["total_files"] == job["result"]["files"]
        models = [m["path"] for m in c.get("/api/files", params={"kind": "model"}).json()]
        assert str(out) in models
        # The Models page describes it from its files, with where it came from.
        row = {m["path"]: m for m in c.get("/api/models").json()}[str(out)]
        assert row["source"] == {
            "kind": "hub", "hub_id": "org/e2e-llama", "revision": "main", "commit": commit,
            "endpoint": local_hub.url, "downloaded_at": row["source"]["downloaded_at"],
        }  # fmt: skip
        assert row["architecture"] == "LlamaForCausalLM" and row["params"] > 0
        assert row["vocab_size"] and row["size_bytes"] > 0 and row["tied_embeddings"] is False
        # A repo the Hub does not hold: failed, with the reason and the fix.
        r = c.post("/api/jobs", json={"kind": "download", "params": {"repo_id": "org/nothing"}})
        bad = _wait(hub_panel, r.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
        assert bad["status"] == "failed" and "was not found" in bad["status_reason"], bad
        assert "check the id and the revision" in bad["status_reason"]
        # The token: in no answer and no log.
        for path in ("/api/jobs", f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/log"):
            assert HUB_TOKEN not in c.get(path).text
    for log in hub_panel.data_dir.rglob("*.log"):
        assert HUB_TOKEN.encode() not in log.read_bytes(), log


def test_a_cancelled_download_is_never_offered_and_the_next_resumes(
    hub_panel: Panel, local_hub: LocalHub
) -> None:
    big = os.urandom(64 * 1024 * 1024)
    local_hub.add_repo(
        "org/e2e-big", {"config.json": b'{"model_type": "llama"}', "model.safetensors": big}
    )
    params = {"kind": "download", "params": {"repo_id": "org/e2e-big"}}
    with hub_panel.client() as c:
        first = c.post("/api/jobs", json=params).json()["id"]
        running = _wait(
            hub_panel, first, lambda j: (j.get("progress") or {}).get("bytes", 0) > 1 << 20
        )
        assert running["status"] == "running" and running["progress"]["bytes_per_second"] > 0
        # The tool's argv holds the repo id but never the token.
        tools = [
            p for p in psutil.process_iter(["cmdline", "environ"])
            if "worker.hub" in (p.info["cmdline"] or [])
        ]  # fmt: skip
        assert tools and all(HUB_TOKEN not in " ".join(p.info["cmdline"]) for p in tools)
        assert any((p.info["environ"] or {}).get("HF_TOKEN") == HUB_TOKEN for p in tools)
        c.post(f"/api/jobs/{first}/cancel")
        cancelled = _wait(hub_panel, first, lambda j: j["status"] == "cancelled", 60)
        assert cancelled["progress"]["bytes"] < len(big)
        models = [m["path"] for m in c.get("/api/files", params={"kind": "model"}).json()]
        assert not any("e2e-big" in m for m in models), models
        assert not (hub_panel.data_dir / "models" / "org--e2e-big").exists()
        second = c.post("/api/jobs", json=params).json()["id"]
        done = _wait(hub_panel, second, lambda j: j["status"] in ("succeeded", "failed"))
        assert done["status"] == "succeeded", _log(hub_panel, second)
        assert "0.0 MB already here" not in _log(hub_panel, second)
        out = hub_panel.data_dir / "models" / "org--e2e-big" / "model.safetensors"
        assert out.read_bytes() == big
