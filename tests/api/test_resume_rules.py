"""One resume rule for the API and the run page (``cpt_contract/statuses.py``): a finished run
resumes from any of its checkpoints, from its newest only when it did not finish. In-process."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER
from cpt_contract.statuses import RESUMABLE_STATUSES, RESUME_LAST_STATUSES, RunStatus
from tests.api.test_inprocess import WORKER_TOKEN
from tests.api.test_inprocess import client as client

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


def _finished(client: TestClient, status: str) -> str:
    run = client.post("/api/runs", json={"preset": "tiny-demo", "config": {}}).json()
    rid, out = run["id"], Path(run["output_dir"])
    claim = client.post(
        f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "w"}, headers=WORKER
    )
    lease = {**WORKER, LEASE_HEADER: claim.json()["lease"]}
    events = []
    for seq, step in enumerate((4, 8), 1):
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        events.append({"seq": seq, "kind": "checkpoint", "step": step, "time": 1.0 + seq,
                       "path": str(out / f"checkpoint-{step}")})  # fmt: skip
    assert (
        client.post(
            f"/api/internal/runs/{rid}/events", json={"attempt": 1, "events": events}, headers=lease
        ).status_code
        == 200
    )
    for s in ("running", status):
        r = client.post(
            f"/api/internal/runs/{rid}/status", json={"attempt": 1, "status": s}, headers=lease
        )
        assert r.status_code == 200, r.text
    return rid


def test_resume_from_last_only_when_unfinished_from_a_checkpoint_when_finished(
    client: TestClient,
) -> None:
    assert RESUME_LAST_STATUSES < RESUMABLE_STATUSES
    for status in ("succeeded", "failed", "cancelled"):
        rid = _finished(client, status)
        last = client.post(f"/api/runs/{rid}/resume", json={"checkpoint": "last"})
        if RunStatus(status) in RESUME_LAST_STATUSES:
            assert last.status_code == 200, last.text
            continue
        assert last.status_code == 409 and "earlier checkpoint" in last.json()["detail"]
        earlier = client.post(f"/api/runs/{rid}/resume", json={"checkpoint": "checkpoint-4"})
        assert earlier.status_code == 200 and earlier.json()["step"] == 4, earlier.text
