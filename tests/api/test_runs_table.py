"""The runs list as a table: tags and notes (stored, searchable), sorting by any column,
config field or metric summary. In-process (real app, real SQLite, no worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER
from tests.api.test_inprocess import WORKER_TOKEN
from tests.api.test_inprocess import client as client

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


def _run(client: TestClient, name: str, lr: float, losses: list[float]) -> str:
    r = client.post(
        "/api/runs",
        json={"name": name, "preset": "tiny-demo", "config": {"training": {"learning_rate": lr}}},
    )
    assert r.status_code == 201, r.text
    rid = str(r.json()["id"])
    claim = client.post(
        f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "w"}, headers=WORKER
    )
    assert claim.status_code == 200, claim.text
    events = [
        {"seq": i, "kind": "log", "step": i + 1, "time": 1.0 + i, "loss": v}
        for i, v in enumerate(losses)
    ]
    lease = {**WORKER, LEASE_HEADER: claim.json()["lease"]}
    r = client.post(
        f"/api/internal/runs/{rid}/events", json={"attempt": 1, "events": events}, headers=lease
    )
    assert r.status_code == 200, r.text
    return rid


@pytest.fixture
def three(client: TestClient) -> Iterator[list[str]]:
    yield [
        _run(client, "a", 1e-4, [5.0, 3.0, 4.0]),  # last 4, best 3
        _run(client, "b", 3e-4, [6.0, 2.0]),  # last 2, best 2
        _run(client, "c", 2e-4, [3.5]),  # last 3.5, best 3.5
    ]


def _names(client: TestClient, **params: str) -> list[str]:
    r = client.get("/api/runs", params=params)
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["items"]]


def test_metric_summary_keeps_last_and_best(client: TestClient, three: list[str]) -> None:
    got = client.get(f"/api/runs/{three[0]}").json()["metrics_summary"]["loss"]
    assert got["last"] == 4.0 and got["best"] == 3.0 and got["best_step"] == 2


def test_sort_by_column_config_field_and_metric(client: TestClient, three: list[str]) -> None:
    assert _names(client) == ["c", "b", "a"]  # newest first by default
    assert _names(client, sort="name") == ["a", "b", "c"]
    assert _names(client, sort="-loss") == ["a", "c", "b"]
    assert _names(client, sort="config.training.learning_rate") == ["a", "c", "b"]
    assert _names(client, sort="-config.training.learning_rate") == ["b", "c", "a"]
    assert _names(client, sort="metric.loss.best") == ["b", "a", "c"]
    assert _names(client, sort="metric.loss.last") == ["b", "c", "a"]
    r = client.get("/api/runs", params={"sort": "config.training.nope"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "sort"]


def test_tags_and_note_are_stored_and_searchable(client: TestClient, three: list[str]) -> None:
    r = client.patch(
        f"/api/runs/{three[1]}",
        json={"tags": ["lora-r8", "kannada", "lora-r8"], "note": "Baseline for the kn sweep"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["lora-r8", "kannada"] and r.json()["note"].startswith("Baseline")
    assert client.get(f"/api/runs/{three[1]}").json()["tags"] == ["lora-r8", "kannada"]
    assert _names(client, q="kn sweep") == ["b"]  # the note
    assert _names(client, q="KANNADA") == ["b"]  # a tag, any case
    assert _names(client, tag="lora-r8") == ["b"]
    assert _names(client, tag="lora") == []  # a tag filter matches whole tags only
    bad = client.patch(f"/api/runs/{three[1]}", json={"tags": ["ok", "two words"]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "tags", 1]
    assert "no spaces" in bad.json()["detail"][0]["msg"]
    assert client.patch("/api/runs/r-nope", json={"note": "x"}).status_code == 404
