"""The tokenizer workshop in the browser: a tokenizer job runs on the worker's job slot, the page
shows fertility base vs extended per language, a sentence tokenized by both and the unreachable
count, and "Use in a new run" launches a run that trains with the extended tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import UI, screenshot

pytestmark = pytest.mark.browser


def test_extend_a_tokenizer_and_train_with_it(ui: UI, tiny_assets: dict[str, Path]) -> None:
    page = ui.page
    corpus = tiny_assets["corpus"]
    ui.goto("/tokenizers")
    page.get_by_label("Base tokenizer", exact=True).fill(str(tiny_assets["model"]))
    page.get_by_label("Training text", exact=True).fill(
        f"{corpus / 'udhr_kn_Knda.txt'}\n{corpus / 'chatterbot_hindi.jsonl'}"
    )
    page.get_by_label("At most this many new tokens", exact=True).fill("150")
    page.get_by_label("Held-out text", exact=True).fill(
        f"{corpus / 'udhr_kn_Knda.txt'}\n{corpus / 'udhr_en_Latn.txt'}"
    )
    page.get_by_role("button", name="Extend tokenizer").click()
    detail = page.get_by_test_id("job-detail")
    detail.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.jobs-table tbody tr')?.dataset.status === 'succeeded'",
        timeout=180_000,
    )
    fert = page.get_by_test_id("fertility")
    fert.wait_for()
    kn, en = fert.locator("tr[data-lang=udhr_kn_Knda]"), fert.locator("tr[data-lang=udhr_en_Latn]")
    assert "\u2212" in kn.locator("td").nth(2).inner_text()  # Kannada needs fewer tokens per word
    summary: Any = page.get_by_test_id("tokenizer-summary").inner_text()
    assert "0 unreachable" in summary and "base ids unchanged" in summary
    assert en.count() == 1
    assert page.get_by_test_id("example").count() == 2
    assert page.locator(".piece-new").count() > 0  # new pieces highlighted in the example
    screenshot(page, "tokenizers")

    page.get_by_role("button", name="Use in a new run").click()
    page.wait_for_url("**/#/launch?tokenizer=*")
    estimate = page.get_by_test_id("vocab-estimate")
    estimate.wait_for(timeout=30_000)
    assert "embedding rows will be added" in estimate.inner_text()
    assert "subtoken_mean" in estimate.inner_text()
    tokenizer = page.locator("[data-field='model.tokenizer_name_or_path'] input[type=text]")
    assert tokenizer.input_value().endswith("/output")
    page.get_by_label("Max steps", exact=True).fill("6")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url("**/#/runs/*")
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)
