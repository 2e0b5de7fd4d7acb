"""In Chromium: a run interrupted once shows its attempts and why each ended (the server's
attempt_log), and while it waits for its restart, why it waits (queue, position, workers).

The interrupted attempt is reported through the real worker protocol (claim, lease, status on a
real API); the run's queue has no worker, so the restarted attempt stays queued for the test.
"""

from __future__ import annotations

from typing import Any

import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import claimed_run, worker_client
from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]
QUEUE = "ui-attempts-nobody"
REASON = "stalled: no step for 612 s at step 0"


def test_run_page_shows_attempts_and_waiting_reason(ui: UI, panel: Any) -> None:
    run = claimed_run(panel, worker="ui-box", queue=QUEUE, name="ui attempts")
    run_id, lease = run["id"], {LEASE_HEADER: run["lease"]}
    internal = worker_client(panel)
    try:
        body = {"attempt": 1, "status": "failed", "reason": REASON, "kind": "worker_stopped"}
        r = internal.post(f"/api/internal/runs/{run_id}/status", json=body, headers=lease)
        assert r.status_code == 200, r.text
        with panel.client() as c:
            run = c.get(f"/api/runs/{run_id}").json()
        assert (run["status"], run["attempt"]) == ("queued", 2), run
        assert run["waiting_reason"].startswith(f"waiting for a worker on queue {QUEUE}"), run

        page = ui.goto(f"/runs/{run_id}")
        row = page.get_by_test_id("attempts").locator("tr[data-attempt='1']")
        row.wait_for()
        cells = [c.inner_text() for c in row.locator("td").all()]
        assert cells[0] == "1" and cells[1] == "failed", cells
        assert cells[3] == REASON and cells[4] == "restarted automatically as attempt 2", cells
        waiting = page.get_by_test_id("waiting-reason")
        wait_until(
            lambda: f"none is alive (position 1 in queue {QUEUE})" in waiting.inner_text(),
            15,
            what="the server's waiting reason",
        )
        screenshot(page, "run-attempts", docs=False)
    finally:
        internal.close()
        with panel.client() as c:
            c.post(f"/api/runs/{run_id}/cancel")
