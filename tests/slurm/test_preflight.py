"""Bad input against the live Slurm worker's sinfo report: 422 at the field, never a job that
pends forever; the Workers API shows the partitions with idle/allocated nodes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.slurm.conftest import config_with
from tests.support.e2e import tiny_config
from tests.support.panel import Panel


def _slurm_worker(panel: Panel) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with panel.client() as c:
            workers = c.get("/api/workers").json()
        found = [w for w in workers if w["alive"] and w["executor"] == "slurm" and w["cluster"]]
        if found:
            return dict(found[0])
        time.sleep(0.3)
    raise AssertionError(f"no Slurm worker with a cluster report: {workers}")


def test_workers_page_data_shows_partitions(slurm_panel: Panel) -> None:
    worker = _slurm_worker(slurm_panel)
    parts = {p["name"]: p for p in worker["cluster"]["partitions"]}
    assert set(parts) >= {"debug", "short"}
    assert parts["debug"]["default"] and parts["debug"]["nodes_total"] == 2
    assert parts["short"]["max_time_minutes"] == 1
    assert parts["debug"]["nodes_idle"] + parts["debug"]["nodes_allocated"] <= 2
    assert worker["cluster"]["default_partition"] == "debug"
    assert worker["gpus"] == []
    # The local cluster's nodes have no GPU GRES, and the test worker asks for none.
    assert parts["debug"]["gpus_per_node"] == 0
    assert worker["cluster"]["requests_gpus"] is False


@pytest.mark.parametrize(
    ("launch", "field", "words"),
    [
        ({"partition": "nope"}, "partition", "partition 'nope' does not exist"),
        ({"nnodes": 3}, "nnodes", "partition 'debug' has 2 nodes"),
        ({"partition": "short", "time_limit": "5"}, "time_limit", "maximum 00:01:00"),
        ({"time_limit": "1-00:00:00"}, "time_limit", "above partition 'debug'"),
    ],
)
def test_impossible_jobs_are_422_at_the_field(
    slurm_panel: Panel, tiny_assets: dict[str, Any], launch: dict[str, Any], field: str, words: str
) -> None:
    _slurm_worker(slurm_panel)
    body = {"preset": "tiny-demo", "config": config_with(tiny_config(tiny_assets), **launch)}
    for route in ("/api/runs/preview", "/api/runs"):
        with slurm_panel.client() as c:
            r = c.post(route, json=body)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        hit = [e for e in detail if e["loc"] == ["body", "config", "launch", field]]
        assert hit, detail
        assert words in hit[0]["msg"] and "Slurm" in hit[0]["msg"], hit[0]["msg"]


def test_a_job_that_fits_is_accepted_by_the_preview(
    slurm_panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    _slurm_worker(slurm_panel)
    config = config_with(tiny_config(tiny_assets), nnodes=2, partition="short", time_limit="1")
    with slurm_panel.client() as c:
        r = c.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 200, r.text
