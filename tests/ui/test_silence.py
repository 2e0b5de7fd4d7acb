"""In Chromium: a run whose worker falls silent says so as soon as its word is late ("No word
from ... for N s"), long before the recovery loop judges it lost, and counts up on its own.

The worker is pretend at the protocol's edge: it claims the run and reports ``running`` through
the real API, then says nothing more (a frozen worker, as the faults tests make with SIGSTOP).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser]
QUEUE = "ui-silence-nobody"


def test_a_silent_worker_is_shown_before_the_run_is_judged_lost(ui: UI, panel: Any) -> None:
    config = {"training": {"max_steps": 4}, "launch": {"queue": QUEUE}}
    with panel.client() as c:
        r = c.post(
            "/api/runs", json={"name": "ui silence", "preset": "tiny-demo", "config": config}
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
    internal = httpx.Client(
        base_url=panel.url + "/api/internal",
        headers={"Authorization": f"Bearer {panel.worker_token}"},
        timeout=30,
    )
    try:
        r = internal.post(f"/runs/{run_id}/claim", json={"attempt": 1, "worker": "quiet-box"})
        assert r.status_code == 200, r.text
        lease = {LEASE_HEADER: r.json()["lease"]}
        r = internal.post(
            f"/runs/{run_id}/status", json={"attempt": 1, "status": "running"}, headers=lease
        )
        assert r.status_code == 200, r.text
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
            f"/runs/{run_id}/status", json={"attempt": 1, "status": "running"}, headers=lease
        )
        wait_until(lambda: banner.count() == 0, 15, what="the banner gone after a report")
    finally:
        internal.close()
        with panel.client() as c:
            c.post(f"/api/runs/{run_id}/cancel")
