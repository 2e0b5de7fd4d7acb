"""A run with two held-out sets and sample prompts, launched from the form: per-set bits/char
charts from step 0, the forgetting line of the retain set, and the samples by step."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import CANVAS_INK, UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_eval_sets_and_prompts_from_the_form(
    ui: UI, panel: Any, tiny_assets: dict[str, Path]
) -> None:
    page = ui.page
    ui.goto("/launch")
    page.get_by_label("Run name").fill("ui eval sets")
    page.get_by_label("Max steps", exact=True).fill("8")
    page.get_by_label("Log every N steps").fill("2")
    page.get_by_label("Checkpoint every N steps").fill("100")
    page.get_by_label("Evaluate every N steps").fill("4")
    corpus = tiny_assets["corpus"]
    sets = {
        "kn": {"path": str(corpus / "udhr_kn_Knda.txt"), "role": "target", "max_documents": 4},
        "en": {"path": str(corpus / "udhr_en_Latn.txt"), "role": "retain", "max_documents": 4},
    }
    # Structured fields are JSON text areas generated from the schema; bad JSON is the
    # server's 422 at the field, not a silent drop.
    held = page.get_by_label("Held-out sets", exact=True)
    held.fill("{not json")
    page.get_by_test_id("error-data.eval_sets").wait_for()
    held.fill(json.dumps(sets))
    page.get_by_label("Sample prompts", exact=True).fill(
        json.dumps({"en": ["All human beings"], "kn": ["ಎಲ್ಲಾ"]})
    )
    page.get_by_label("Sample length", exact=True).fill("6")
    preview = page.get_by_test_id("command-preview")
    wait_until(lambda: "--eval_sets" in preview.inner_text(), 10, what="eval sets in the argv")
    assert "--eval_prompts" in preview.inner_text()
    assert page.get_by_test_id("error-data.eval_sets").count() == 0

    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"#/runs/[^/?]+$"))
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)

    # One line per set (validation, kn, en), each from step 0: 3 evaluations (0, 4, 8).
    chart = page.get_by_test_id("chart-eval")
    wait_until(lambda: int(chart.get_attribute("data-points") or 0) >= 9, 20, what="eval points")
    assert "bits per character" in chart.inner_text()
    for name in ("validation", "kn", "en"):
        assert chart.locator(".u-legend .u-series", has_text=name).count() == 1, name
    assert chart.evaluate(CANVAS_INK) > 50
    table = page.get_by_test_id("eval-table")
    kn = table.locator("tr[data-set=kn]")
    assert "(step 0)" in kn.inner_text() and "(step 8)" in kn.inner_text()
    # The toggle shows the per-token loss instead; perplexity stays in the table.
    page.get_by_test_id("eval-metric").select_option("loss")
    wait_until(lambda: "loss (per token)" in chart.inner_text(), 5, what="loss chart")
    assert "Perplexity" in table.inner_text()
    page.get_by_test_id("eval-metric").select_option("bits_per_char")

    # The retain set's forgetting line.
    line = page.get_by_test_id("forgetting")
    line.wait_for()
    assert re.search(r"en [+\u2212]\d+\.\d{3} bits/char since step 0", line.inner_text()), (
        line.inner_text()
    )

    # Samples: every prompt, greedy and sampled, at the chosen step beside step 0.
    samples = page.get_by_test_id("samples")
    samples.wait_for()
    step = page.get_by_test_id("samples-step")
    assert [o.inner_text() for o in step.locator("option").all()] == ["0", "4", "8"]
    assert samples.locator("tbody tr").count() == 4  # 2 prompts x 2 modes
    step.select_option("4")
    wait_until(lambda: "Step 4" in samples.inner_text(), 5, what="step 4 samples")
    assert samples.locator("tbody tr[data-set=kn][data-mode=greedy]").count() == 1
    screenshot(page, "run-eval")
