"""Compare a LoRA and a full-weight run: overlaid curves and the config differences."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import CANVAS_INK, UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _run(panel: Any, name: str, method: str, english: Path) -> str:
    config: dict[str, Any] = {
        "method": {"finetuning_type": method},
        "data": {
            "max_eval_samples": 8,  # a short eval: the CPU is shared with other tests
            "eval_sets": {"en": {"path": str(english), "role": "retain", "max_documents": 4}},
        },
        "training": {
            "max_steps": 8,
            "logging_steps": 1,
            "eval_steps": 4,
            "save_steps": 8,
            "eval_prompts": {"en": ["All human beings"]},
            "sample_max_new_tokens": 4,
        },
    }
    if method == "full":
        config["training"]["learning_rate"] = 5e-4
    with panel.client() as c:
        r = c.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": config})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def test_compare_two_runs(ui: UI, panel: Any, tiny_assets: dict[str, Path]) -> None:
    english = tiny_assets["corpus"] / "udhr_en_Latn.txt"
    lora = _run(panel, "cmp lora", "lora", english)
    full = _run(panel, "cmp full", "full", english)
    with panel.client() as c:

        def statuses() -> list[str]:
            st = [c.get(f"/api/runs/{i}").json()["status"] for i in (lora, full)]
            assert "failed" not in st, [
                c.get(f"/api/runs/{i}").json()["status_reason"] for i in (lora, full)
            ]
            return st

        wait_until(
            lambda: statuses() == ["succeeded", "succeeded"],
            300,
            interval=1,
            what="both runs to succeed",
        )

    page = ui.page
    # Pick them from the runs list, as a user would.
    ui.goto("/runs")
    for rid in (lora, full):
        page.locator(f"tr[data-run-id='{rid}'] input[type=checkbox]").check()
    page.get_by_test_id("compare-selected").click()
    page.wait_for_url("**/#/compare?ids=*")
    assert set(page.url.split("ids=")[1].split(",")) == {lora, full}

    loss = page.get_by_test_id("compare-loss")
    wait_until(
        lambda: int(loss.get_attribute("data-points") or 0) >= 16, 20, what="both loss curves"
    )
    assert loss.evaluate(CANVAS_INK) > 50
    # One legend entry per run in the chart.
    assert loss.locator(".u-legend .u-series").count() == 3  # x + two runs

    # The summary answers the question: per run method, cost and each held-out set's
    # step-0 -> final bits/char (here the tiny demo's validation split).
    summary = page.get_by_test_id("compare-summary")
    wait_until(lambda: summary.locator("tbody tr").count() == 2, 10, what="summary rows")
    assert summary.locator("th[data-set=validation]").count() == 1
    rows = {rid: summary.locator(f"tr[data-run='{rid}']").inner_text() for rid in (lora, full)}
    assert "LoRA" in rows[lora] and "full" in rows[full]
    for rid, text in rows.items():
        assert re.search(r"\d\.\d+ → \d\.\d+ \([+\u2212]\d\.\d{3}\)", text), text
        # A run shorter than the API's speed window still has its measured tokens/s.
        cells = summary.locator(f"tr[data-run='{rid}'] td").all_inner_texts()
        assert re.fullmatch(r"[\d.]+K?", cells[5].strip()), cells
    assert summary.locator("th[data-set=en]", has_text="retain").count() == 1
    # The forgetting of the retain set, per run, and the same prompt's samples side by side.
    forgetting = page.get_by_test_id("compare-forgetting")
    assert forgetting.count() == 2
    assert re.search(
        r"cmp lora: en [+\u2212]\d\.\d{3} bits/char since step 0", forgetting.first.inner_text()
    )
    samples = page.get_by_test_id("compare-samples")
    samples.wait_for()
    row = samples.locator("tbody tr", has_text="All human beings")
    assert row.locator("td[data-run]").count() == 2 and "step 8" in row.inner_text()
    bpc = page.get_by_test_id("compare-eval_validation_bits_per_char")
    wait_until(lambda: int(bpc.get_attribute("data-points") or 0) >= 6, 10, what="bits/char")
    assert page.get_by_test_id("compare-perplexity").count() == 0  # exp(loss): tables only

    diff = page.get_by_test_id("config-diff")
    method_row = diff.locator("tr[data-key='method.finetuning_type']")
    assert "lora" in method_row.inner_text() and "full" in method_row.inner_text()
    assert diff.locator("tr[data-key='training.learning_rate']").count() == 1
    # Keys both runs share are not listed.
    assert diff.locator("tr[data-key='training.max_steps']").count() == 0

    page.get_by_label("by tokens seen").check()
    wait_until(
        lambda: int(loss.get_attribute("data-points") or 0) >= 16, 5, what="curves by tokens"
    )
    screenshot(page, "compare")

    # The runs list now holds runs in several states: the picture for the docs.
    ui.goto("/runs")
    page.locator(f"tr[data-run-id='{lora}']").wait_for()
    screenshot(page, "runs")
