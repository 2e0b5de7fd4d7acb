"""The seed's experiment from the browser: the seed-2x2 preset ({base, extended tokenizer} x
{LoRA, full}) launched on the tiny model, waited for, and its verdict read on the page — the
table, the winner and the samples side by side — then the same URL at 390 px."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import CANVAS_INK, UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_seed_grid_launched_and_judged_on_the_page(
    ui: UI, panel: Any, tiny_assets: dict[str, Path]
) -> None:
    page = ui.goto("/experiments")
    form = page.get_by_test_id("new-experiment")
    wait_until(
        lambda: "tokenizer_name_or_path" in form.get_by_test_id("experiment-spec").input_value(),
        30,
        what="the preset's spec",
    )
    form.get_by_test_id("experiment-steps").fill("12")  # short: the CPU is shared
    form.get_by_role("button", name="Preview runs").click()
    preview = form.get_by_test_id("experiment-preview")
    preview.wait_for()
    assert preview.locator("li").count() == 4
    form.get_by_test_id("experiment-launch").click()
    page.wait_for_url(re.compile(r"#/experiments/x-[0-9a-f]+$"))
    url = page.url
    exp_id = url.rsplit("/", 1)[-1]
    status = page.get_by_test_id("experiment-status")
    wait_until(
        lambda: status.get_attribute("data-status") in ("finished", "incomplete"),
        900,
        interval=2,
        what="the experiment to end",
    )
    with panel.client() as c:
        v = c.get(f"/api/experiments/{exp_id}/verdict").json()
    assert status.get_attribute("data-status") == "finished", [
        (r["status"], r["status_reason"]) for r in v["rows"]
    ]
    # The table: one row per run, its axis values and the stored numbers.
    table = page.get_by_test_id("verdict-table")
    rows = table.locator("tbody tr")
    wait_until(lambda: rows.count() == 4, 10, what="4 rows")
    methods = sorted(
        rows.nth(i).locator('td[data-axis="method.finetuning_type"]').inner_text() for i in range(4)
    )
    assert methods == ["full", "full", "lora", "lora"]
    tokenizers = sorted(
        rows.nth(i).locator('td[data-axis="model.tokenizer_name_or_path"]').inner_text()
        for i in range(4)
    )
    assert tokenizers == ["tiny-llama", "tiny-llama", "tokenizer-extended", "tokenizer-extended"]
    for row in v["rows"]:
        cell = table.locator(f'tr[data-run="{row["run_id"]}"] td[data-set="hi"]')
        assert float(cell.get_attribute("data-end") or "nan") == row["sets"]["hi"]["end"]
        assert (
            f"{row['sets']['hi']['start']:.4f} → {row['sets']['hi']['end']:.4f}"
            in cell.inner_text()
        )
        within = table.locator(f'tr[data-run="{row["run_id"]}"]').get_by_test_id(
            "verdict-within-cap"
        )
        assert within.inner_text().startswith("yes" if row["within_cap"] else "no")
    # The winner: the page says what the verdict decided.
    winner = page.get_by_test_id("verdict-winner")
    if v["winner"]:
        assert (
            winner.get_by_test_id("winner-run").get_attribute("data-run") == v["winner"]["run_id"]
        )
        assert (
            winner.get_by_test_id("winner-bpc").inner_text()
            == f"{v['winner']['target_bits_per_char']:.4f}"
        )
    else:
        assert winner.get_by_test_id("no-winner").inner_text() == "no run is within the cap"
    # The samples: the same prompts, one column per run.
    samples = page.get_by_test_id("verdict-samples")
    assert samples.locator("thead th").count() == 5
    greedy = [p for p in v["samples"]["prompts"] if p["mode"] == "greedy"]
    assert greedy and all(len(p["texts"]) == 4 for p in greedy)
    first = samples.locator("tbody tr").first
    for row in v["rows"]:
        text = first.locator(f'td.sample-text[data-run="{row["run_id"]}"]').inner_text()
        assert text.strip() == greedy[0]["texts"][row["run_id"]].strip()
    # Both charts drew.
    for test_id in ("verdict-pareto-en", "verdict-curves"):
        fig: Any = page.get_by_test_id(test_id)

        def drawn(fig: Any = fig) -> bool:
            return bool(fig.evaluate(CANVAS_INK) > 0)

        wait_until(drawn, 10, what=f"{test_id} drawn")
    screenshot(page, "experiment-verdict")
    # Shareable: the same URL opens the same verdict, and it fits a 390 px screen.
    narrow = ui.context.browser.new_context(viewport={"width": 390, "height": 844}, base_url=ui.url)
    try:
        p2 = narrow.new_page()
        p2.add_init_script(f"localStorage.setItem('cpt-panel-token', {ui.token!r})")
        p2.goto(url)
        p2.get_by_test_id("verdict-table").wait_for()
        assert p2.get_by_test_id("verdict-table").locator("tbody tr").count() == 4
        width = p2.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the verdict page is {width} px wide at 390 px"
        screenshot(p2, "experiment-verdict-390", docs=False)
    finally:
        narrow.close()
