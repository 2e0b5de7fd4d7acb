"""A restarted worker takes back its attempt (``/api/internal/runs/{id}/adopt``): only its own
name, only the current attempt; the answer says how far the API has the attempt's data. And an
ended attempt's late events raise the step its attempt-log entry says it reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_protocol import _events
from tests.support.api import claimed_run, worker_client
from tests.support.panel import Panel

Api = tuple[Panel, dict[str, Path]]
NOBODY = "adopt-tests"  # a queue no real worker serves


def _adopt(panel: Panel, rid: str, attempt: int, worker: str) -> Any:
    body = {"attempt": attempt, "worker": worker, "instance": "new-instance", "job": "46"}
    with worker_client(panel) as w:
        return w.post(f"/api/internal/runs/{rid}/adopt", json=body)


def test_the_same_worker_takes_back_its_current_attempt(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel, worker="box-a", queue=NOBODY)
    rid = run["id"]
    sent = _events(panel.data_dir / "runs" / rid)[:8]
    with worker_client(panel, run["lease"]) as w:
        w.post(f"/api/internal/runs/{rid}/events", json={"attempt": 1, "events": sent})
        w.post(f"/api/internal/runs/{rid}/logs", json={"attempt": 1, "offset": 0, "text": "ab\n"})
    other = _adopt(panel, rid, 1, "box-b")
    assert other.status_code == 403 and "held by box-a" in other.json()["detail"]
    wrong = _adopt(panel, rid, 2, "box-a")
    assert wrong.status_code == 409 and "superseded" in wrong.json()["detail"]

    r = _adopt(panel, rid, 1, "box-a")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["attempt"], answer["events_seq"], answer["log_bytes"]) == (1, 8, 3)
    with panel.client() as c, worker_client(panel, answer["lease"]) as w:
        ok = w.post(f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": "running"})
        shown = c.get(f"/api/runs/{rid}").json()
    assert ok.status_code == 200 and shown["status"] == "running"


def test_a_superseded_attempt_is_refused_and_its_late_events_raise_its_step(api: Api) -> None:
    panel, _ = api
    run = claimed_run(panel, worker="box-a", queue=NOBODY)
    rid = run["id"]
    events = _events(panel.data_dir / "runs" / rid)
    with panel.client() as c, worker_client(panel, run["lease"]) as w:
        url = f"/api/internal/runs/{rid}/events"
        w.post(url, json={"attempt": 1, "events": events[:6]})  # up to step 5
        ended = w.post(
            f"/api/internal/runs/{rid}/status",
            json={"attempt": 1, "status": "failed", "reason": "rank 1: killed", "kind": "crashed"},
        )
        assert ended.status_code == 200, ended.text
        restarted = c.get(f"/api/runs/{rid}").json()
        assert restarted["attempt"] == 2 and restarted["attempt_log"][0]["step"] == 5
        assert _adopt(panel, rid, 1, "box-a").status_code == 409
        # The ended attempt's worker ships what its training really did after all.
        w.post(url, json={"attempt": 1, "events": events})
        after = c.get(f"/api/runs/{rid}").json()
    assert after["attempt_log"][0]["step"] == 20, after["attempt_log"]
    assert after["attempt"] == 2 and after["status"] == "queued"
