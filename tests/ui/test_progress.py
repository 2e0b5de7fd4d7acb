"""Honest progress in Chromium against the real API and worker: phases shown, the step never
goes back on a resume, tokens/s has no spike, Started/Duration span the attempts, the resume
dialog names the checkpoint, the Config panel shows each attempt's real argv, and a succeeded
run offers no live dot and no Resume."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ui import UI, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Every 50 ms: the attempt, the step shown, the phase shown and tokens/s as shown.
RECORDER = """
window.__seen = [];
setInterval(() => {
  const stat = (label) => {
    for (const s of document.querySelectorAll('.stats .stat')) {
      if (s.querySelector('.stat-label')?.textContent === label) return s.querySelector('.stat-value');
    }
    return null;
  };
  const text = stat('Progress')?.querySelector('.progress-text')?.textContent;
  if (!text) return;
  window.__seen.push({
    attempt: Number(stat('Attempt')?.textContent),
    step: Number(text.split('/')[0]),
    phase: document.querySelector('[data-testid=phase]')?.dataset.phase ?? null,
    tps: stat('Tokens/s')?.textContent ?? '',
    status: document.querySelector('.page-head .badge')?.dataset.status ?? null,
  });
}, 50);
"""


def _number(text: str) -> float | None:
    """``compact`` as the page prints it: 950, 1.2K, 3.4M."""
    text = text.strip()
    if not text or text == "\u2013":
        return None
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}.get(text[-1], 1.0)
    return float(text.rstrip("KMB")) * scale


def test_progress_phases_resume_and_attempt_commands(ui: UI, panel: Any) -> None:
    page = ui.page
    # Logs every 2 steps: one such interval on a shared 2-core box is mostly scheduler noise, so
    # the page shows no speed until the API's window holds enough training time.
    training = {"max_steps": 100, "save_steps": 20, "eval_steps": 20, "logging_steps": 2}
    with panel.client() as c:
        r = c.post(
            "/api/runs",
            json={
                "name": "ui honest progress",
                "preset": "tiny-demo",
                "config": {"training": training},
            },
        )
        assert r.status_code == 201, r.text
        rid = r.json()["id"]

    page.add_init_script(RECORDER)
    ui.goto(f"/runs/{rid}")
    page.locator("[data-testid=phase]").wait_for(timeout=120_000)

    # Cancel once a checkpoint exists, so there is something to resume from.
    with panel.client() as c:
        wait_until(
            lambda: any(x["exists"] for x in c.get(f"/api/runs/{rid}/checkpoints").json()),
            timeout=120,
            interval=0.1,
            what="a first checkpoint",
        )
        assert c.post(f"/api/runs/{rid}/cancel").status_code == 200
        wait_until(
            lambda: c.get(f"/api/runs/{rid}").json()["status"] == "cancelled",
            timeout=60,
            what="cancelled",
        )
        first = c.get(f"/api/runs/{rid}").json()
        checkpoints = c.get(f"/api/runs/{rid}/checkpoints").json()
    newest = max((x for x in checkpoints if x["exists"]), key=lambda x: x["step"])
    page.locator(".page-head .badge[data-status=cancelled]").wait_for(timeout=30_000)
    # The runs table offers Resume too: the run stopped unfinished with a checkpoint on disk.
    assert first["has_checkpoint"] is True
    ui.goto("/runs")
    page.locator(f"tr[data-run-id='{rid}']").get_by_role("button", name="Resume").wait_for()
    ui.goto(f"/runs/{rid}")
    page.locator(".page-head .badge[data-status=cancelled]").wait_for(timeout=30_000)

    # The resume dialog names the checkpoint, its step, its evaluation and its age.
    page.locator(".page-head").get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    target = dialog.get_by_test_id("resume-target")
    wait_until(lambda: target.get_attribute("data-checkpoint") == newest["name"], what="target")
    text = target.inner_text()
    assert newest["name"] in text and f"step {newest['step']} of 100" in text, text
    assert "eval loss" in text and "perplexity" in text and "saved" in text, text
    dialog.get_by_test_id("confirm").click()
    # At once (queued, or already claimed: the worker may be quicker than the page): the
    # checkpoint's step, never 0; the recorder below proves no lower step is shown later.
    page.locator(".page-head .badge:not([data-status=cancelled])").wait_for(timeout=10_000)
    shown = page.locator(".stats .progress-text").inner_text()
    assert int(shown.split("/", 1)[0].replace(",", "")) >= newest["step"], shown

    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)
    seen = page.evaluate("window.__seen")
    phases = {s["phase"] for s in seen if s["phase"]}
    assert "training" in phases and phases & {"preparing_data", "loading_model"}, phases
    resumed = [s for s in seen if s["attempt"] == 2]
    assert resumed and min(s["step"] for s in resumed) >= newest["step"], resumed[:5]
    steps = [s["step"] for s in resumed]
    assert steps == sorted(steps), "the step shown never goes back within the resumed attempt"
    speeds = sorted(v for s in resumed if (v := _number(s["tps"])) is not None)
    assert speeds, resumed[-5:]
    median = speeds[len(speeds) // 2]
    # A loaded box moves a 2-s window's speed by a few times (measured: 4.1x beside a full test
    # run); the spike this guards against counts the earlier attempt's tokens into the first
    # window after the resume: the whole run's tokens over 2 s, an order of magnitude.
    assert speeds[-1] <= 6 * median, (speeds[-1], median)

    # Finished: no live dot, no Resume; Started is the first attempt's start.
    assert page.locator("[data-testid=live]").count() == 0
    assert page.locator(".page-head").get_by_role("button", name="Resume").count() == 0
    with panel.client() as c:
        done = c.get(f"/api/runs/{rid}").json()
    assert done["first_started_at"] == first["started_at"]
    assert done["duration_seconds"] > first["duration_seconds"]

    # Every chart marks where attempt 2 started (its checkpoint's step).
    charts = page.locator(".run-page figure.chart")
    assert charts.count() >= 5
    for i in range(charts.count()):
        assert charts.nth(i).get_attribute("data-marks") == str(newest["step"]), i

    # Config: each attempt's command as its worker launched it.
    commands = page.get_by_test_id("attempt-command")
    wait_until(lambda: commands.count() == 2, what="two attempt commands")
    by_attempt = {
        commands.nth(i).get_attribute("data-attempt"): commands.nth(i).inner_text()
        for i in range(2)
    }
    assert "--resume_from_checkpoint" not in by_attempt["1"], by_attempt["1"]
    assert "--resume_from_checkpoint last" in by_attempt["2"], by_attempt["2"]
