"""Compare's legend with the cursor off the chart: a run that ended earlier shows its own last
value and step ("3.10 @ 40"), never a value borrowed from the longer run's last step.

The two runs' events are reported over HTTP with the worker's token, as a worker would, on a
queue no worker serves: the legend needs curves of different lengths, not training."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from cpt_contract.protocol import LEASE_HEADER
from tests.support.api import worker_client
from tests.support.ui import UI, wait_until

pytestmark = [pytest.mark.browser]


def _reported_run(panel: Any, name: str, steps: int) -> str:
    config = {"launch": {"queue": "legend-only"}, "training": {"max_steps": steps}}
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": config})
        assert r.status_code == 201, r.text
        rid = str(r.json()["id"])
    with worker_client(panel) as w:
        claim = w.post(f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "legend"})
        assert claim.status_code == 200, claim.text
        w.headers[LEASE_HEADER] = claim.json()["lease"]
        status = f"/api/internal/runs/{rid}/status"
        assert w.post(status, json={"attempt": 1, "status": "running"}).status_code == 200
        t0 = time.time() - steps
        events: list[dict[str, Any]] = [
            {"seq": 1, "time": t0, "kind": "start", "step": 0, "max_steps": steps,
             "tokens_per_step": 100}
        ]  # fmt: skip
        events += [
            {"seq": 1 + i, "time": t0 + i, "kind": "log", "step": i,
             "loss": round(4.0 - i / steps, 4), "tokens_seen": 100 * i}
            for i in range(1, steps + 1)
        ]  # fmt: skip
        events.append(
            {"seq": steps + 2, "time": t0 + steps, "kind": "end", "step": steps,
             "status": "succeeded", "reason": "training finished"}
        )  # fmt: skip
        for at in range(0, len(events), 200):
            r = w.post(
                f"/api/internal/runs/{rid}/events",
                json={"attempt": 1, "events": events[at : at + 200]},
            )
            assert r.status_code == 200, r.text
        done = w.post(status, json={"attempt": 1, "status": "succeeded"})
        assert done.status_code == 200, done.text
    return rid


def test_compare_legend_shows_a_shorter_run_at_its_own_step(ui: UI, panel: Any) -> None:
    short = _reported_run(panel, "legend 40 steps", 40)
    long = _reported_run(panel, "legend 400 steps", 400)
    page = ui.page
    ui.goto(f"/compare?ids={short},{long}")
    loss = page.get_by_test_id("compare-loss")
    wait_until(
        lambda: int(loss.get_attribute("data-points") or 0) >= 440, 20, what="both loss curves"
    )
    page.mouse.move(0, 0)  # the cursor off every chart
    entries = loss.locator(".u-legend .u-series")
    texts = [entries.nth(i).inner_text() for i in range(entries.count())]
    # x at the longest run's last step, then one entry per run: the short run names its own last
    # step beside its (smoothed) value; the long run's value is at the shown x, so it has no "@".
    assert len(texts) == 3 and "400" in texts[0], texts
    by_name = {("short" if "40 steps" in t else "long"): t for t in texts[1:]}
    assert re.search(r"\d\.\d+\s*@\s*40$", by_name["short"]), texts
    assert "@" not in by_name["long"] and re.search(r"\d\.\d+$", by_name["long"]), texts
