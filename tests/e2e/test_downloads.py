"""Download jobs through the real API, the real worker's job slot and a real local Hub endpoint
(olah, ``tests/support/hub.py``): a model lands under the models root with live progress read back
from the job and its provenance; a missing repo fails with a reason that says what to do; a
cancelled download leaves nothing in the pickers and the next job resumes it; bad parameters are
422s at their field; the Hub token set for the worker is never in an argv, a log or an answer."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.e2e import submit, tiny_config, wait_final, wait_for
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
    # Many shards: each file is its own request, so a cancel lands long before the last one
    # whatever the box's bandwidth (a half file's resume is tests/worker/test_hub_download.py's).
    shards = {f"model-{i:05d}-of-00040.safetensors": os.urandom(2 * 1024 * 1024) for i in range(40)}
    local_hub.add_repo("org/e2e-big", {"config.json": b'{"model_type": "llama"}', **shards})
    params = {"kind": "download", "params": {"repo_id": "org/e2e-big"}}
    with hub_panel.client() as c:
        first = c.post("/api/jobs", json=params).json()["id"]
        running = _wait(hub_panel, first, lambda j: (j.get("progress") or {}).get("files", 0) >= 2)
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
        assert cancelled["progress"]["files"] < cancelled["progress"]["total_files"] == 41
        models = [m["path"] for m in c.get("/api/files", params={"kind": "model"}).json()]
        assert not any("e2e-big" in m for m in models), models
        assert not (hub_panel.data_dir / "models" / "org--e2e-big").exists()
        second = c.post("/api/jobs", json=params).json()["id"]
        done = _wait(hub_panel, second, lambda j: j["status"] in ("succeeded", "failed"))
        assert done["status"] == "succeeded", _log(hub_panel, second)
        assert "0.0 MB already here" not in _log(hub_panel, second)
        out = hub_panel.data_dir / "models" / "org--e2e-big"
        for name, body in shards.items():
            assert (out / name).read_bytes() == body, name


def test_the_token_set_in_settings_reaches_the_tool_environment_only(
    hub_panel: Panel, local_hub: LocalHub
) -> None:
    """The panel's token (Settings, stored encrypted) wins over the worker's CPT_HUB_TOKEN and
    reaches the download tool through its claim and environment, nowhere else. olah answers no
    whoami (504): the token is stored unchecked, saying so."""
    panel_token = "hf_settings_" + "t0ken" * 5
    shards = {f"s-{i:05d}.safetensors": os.urandom(1024 * 1024) for i in range(30)}
    local_hub.add_repo("org/e2e-token", {"config.json": b'{"model_type": "llama"}', **shards})
    with hub_panel.client() as c:
        r = c.put("/api/settings/hub/token", json={"token": panel_token})
        assert r.status_code == 200, r.text
        assert r.json()["check"]["result"] == "unchecked" and "HTTP 504" in r.text
        try:
            params = {"kind": "download", "params": {"repo_id": "org/e2e-token"}}
            job = c.post("/api/jobs", json=params).json()["id"]
            _wait(hub_panel, job, lambda j: (j.get("progress") or {}).get("files", 0) >= 1)
            tools = [
                p for p in psutil.process_iter(["cmdline", "environ"])
                if "worker.hub" in (p.info["cmdline"] or [])
            ]  # fmt: skip
            assert tools and all(panel_token not in " ".join(p.info["cmdline"]) for p in tools)
            envs = [(p.info["environ"] or {}).get("HF_TOKEN") for p in tools]
            assert panel_token in envs and HUB_TOKEN not in envs, envs
            c.post(f"/api/jobs/{job}/cancel")
            _wait(hub_panel, job, lambda j: j["status"] == "cancelled", 60)
            for path in ("/api/settings/hub", "/api/jobs", f"/api/jobs/{job}/log"):
                assert panel_token not in c.get(path).text
        finally:
            assert c.delete("/api/settings/hub/token").json()["source"] == "env"
    for log in hub_panel.data_dir.rglob("*.log"):
        assert panel_token.encode() not in log.read_bytes(), log


def test_a_run_on_a_hub_id_waits_for_its_download_then_trains(
    hub_panel: Panel, local_hub: LocalHub, tiny_assets: dict[str, Path]
) -> None:
    """The launch's base model given as a Hub id: the run waits ("waiting for download of ...
    (N %)"), starts when the download ends and trains on the downloaded model; a download that
    fails fails its run with the download's reason."""
    files: dict[str, bytes | Path] = {
        p.name: p for p in tiny_assets["model"].iterdir() if p.is_file()
    }
    files["extra.bin"] = os.urandom(48 * 1024 * 1024)  # long enough to see the run wait
    local_hub.add_repo("org/run-llama", files)
    config = tiny_config(tiny_assets)
    # A bare org/name is a relative path (refused), and the answer says how to write a Hub id.
    config["model"]["model_name_or_path"] = "org/run-llama"
    with hub_panel.client() as c:
        r = c.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 422 and "a Hub id is written hf:org/run-llama" in r.text, r.text
    config["model"]["model_name_or_path"] = "hf:org/run-llama"
    run = submit(hub_panel, config, "on a hub id")
    target = hub_panel.data_dir / "models" / "org--run-llama"
    assert run["status"] == "queued"
    waiting = wait_for(
        hub_panel, run["id"],
        lambda r: "waiting for download of org/run-llama (" in (r.get("waiting_reason") or ""),
        60, "waiting for its download",
    )  # fmt: skip
    assert waiting["status"] == "queued" and not target.exists()
    done = wait_final(hub_panel, run["id"], timeout=300)
    assert done["status"] == "succeeded", done
    with hub_panel.client() as c:
        stored = c.get(f"/api/runs/{run['id']}").json()["config"]["model"]["model_name_or_path"]
        assert stored == str(target) and (target / "cpt_source.json").exists()
        jobs = c.get("/api/jobs", params={"kind": "download"}).json()
        assert [j["params"]["repo_id"] for j in jobs].count("org/run-llama") == 1

    config["model"]["model_name_or_path"] = "hf:org/not-there"
    bad = wait_final(hub_panel, submit(hub_panel, config, "on a missing hub id")["id"], 120)
    assert bad["status"] == "failed", bad
    assert "model download" in bad["status_reason"] and "was not found" in bad["status_reason"]


def _job_events(
    panel: Panel, job_id: str, until: Any, timeout: float = 180
) -> list[dict[str, Any]]:
    """The ``job`` events of the job's stream, read as a browser's EventSource would."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with panel.client() as c, c.stream("GET", f"/api/jobs/{job_id}/stream", timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            assert time.monotonic() < deadline, events[-1:] or "no event"
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == "job":
                events.append(json.loads(line.split(":", 1)[1]))
                if until(events[-1]):
                    return events
    raise AssertionError(f"the stream ended before the job did: {events[-1:]}")


def test_a_downloads_progress_is_pushed_over_its_stream(
    hub_panel: Panel, local_hub: LocalHub
) -> None:
    shards = {f"model-{i:05d}-of-00024.safetensors": os.urandom(1024 * 1024) for i in range(24)}
    local_hub.add_repo("org/e2e-streamed", {"config.json": b'{"model_type": "llama"}', **shards})
    with hub_panel.client() as c:
        r = c.post(
            "/api/jobs", json={"kind": "download", "params": {"repo_id": "org/e2e-streamed"}}
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert c.get("/api/jobs/nosuchjob/stream").status_code == 404
    events = _job_events(hub_panel, job_id, lambda j: j["status"] in ("succeeded", "failed"))
    last = events[-1]
    assert last["status"] == "succeeded", last
    # Pushed as the tool measured it: bytes only grow, and the last report is the whole repo.
    seen = [e["progress"]["bytes"] for e in events if e.get("progress")]
    assert len(set(seen)) >= 2 and seen == sorted(seen), seen
    assert last["progress"]["bytes"] == last["progress"]["total_bytes"] == last["result"]["bytes"]
    # The stream says what GET says (one view of a job).
    with hub_panel.client() as c:
        assert c.get(f"/api/jobs/{job_id}").json()["progress"] == last["progress"]
