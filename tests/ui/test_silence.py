"""In Chromium: a run whose worker falls silent says so as soon as its word is late ("No word
from ... for N s"), long before the recovery loop judges it lost, and counts up on its own.

The worker is pretend at the protocol's edge: it claims the run and reports ``running`` through
the real API, then says nothing more (a frozen worker, as the faults tests make with SIGSTOP).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import claimed_run, worker_client
from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser]
QUEUE = "ui-silence-nobody"


def test_a_silent_worker_is_shown_before_the_run_is_judged_lost(ui: UI, panel: Any) -> None:
    run = claimed_run(panel, worker="quiet-box", queue=QUEUE, name="ui silence")
    run_id, lease = run["id"], {LEASE_HEADER: run["lease"]}
    internal = worker_client(panel)
    try:
        page = ui.goto(f"/runs/{run_id}")
        banner = page.get_by_test_id("silence-banner")
        banner.wait_for(timeout=30_000)  # shown once the word is 10 s late
        text = banner.inner_text()
        assert "No word from quiet-box for" in text and "judged lost after" in text, text
        first = int(re.search(r"for (\d+) s", text).group(1))  # type: ignore[union-attr]
        assert 10 <= first < 60
        wait_until(
            lambda: int(re.search(r"for (\d+) s", banner.inner_text()).group(1)) > first,  # type: ignore[union-attr]
            10,
            what="the silence counting up on its own",
        )
        screenshot(page, "run-silent-worker", docs=False)
        # A word from the worker clears it at once (its next report).
        internal.post(
            f"/api/internal/runs/{run_id}/status",
            json={"attempt": 1, "status": "running"},
            headers=lease,
        )
        wait_until(lambda: banner.count() == 0, 15, what="the banner gone after a report")
    finally:
        internal.close()
        with panel.client() as c:
            c.post(f"/api/runs/{run_id}/cancel")
