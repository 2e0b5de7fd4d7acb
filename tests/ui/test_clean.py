"""Clean a mixed corpus from the Datasets page: the user orders the steps and edits thresholds, a
bad language code is refused at its field, the worker's job reports each step's counts, the
languages before and after and the removed examples; then a run trains on the new dataset."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.support.clean_corpus import build_corpus
from tests.support.ui import UI, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_clean_a_mixed_corpus_then_train_on_it(
    ui: UI, panel: object, tiny_assets: dict[str, Path]
) -> None:
    data_dir: Path = panel.data_dir  # type: ignore[attr-defined]
    corpus = build_corpus(data_dir / "datasets" / f"mixed-{uuid.uuid4().hex[:6]}")
    name = f"mixed-clean-{uuid.uuid4().hex[:6]}"
    page = ui.page
    ui.goto("/datasets/clean")
    form = page.get_by_role("form", name="New clean job")
    form.get_by_label("Sources", exact=True).fill("\n".join(str(s) for s in corpus.sources))
    form.get_by_label("New dataset name", exact=True).fill(name)
    form.get_by_label("Tokenizer", exact=True).fill(str(tiny_assets["tokenizer"]))

    # Steps in the order clicked, then one moved: language, exact, near, quality, PII.
    for step in ("Language identification", "Exact duplicates", "Quality filters"):
        form.get_by_role("button", name=f"+ {step}").click()
    form.get_by_role("button", name="+ Near duplicates (MinHash)").click()
    form.get_by_role("button", name="Move step 4 up").click()
    form.get_by_role("button", name="+ PII masking").click()
    steps = form.locator("li.clean-step")
    assert [steps.nth(i).get_attribute("data-step") for i in range(5)] == [
        "language", "exact_dedup", "near_dedup", "quality", "pii",
    ]  # fmt: skip
    language = steps.nth(0)
    language.get_by_label("Keep languages", exact=True).fill("en\nhi\nxx")
    # The defaults are shown and editable (Gopher's English n-gram limits, relaxed for Chinese).
    quality = steps.nth(3)
    assert quality.get_by_label("Minimum words", exact=True).input_value() == "5"
    quality.get_by_label("Minimum words", exact=True).fill("3")
    for n in (2, 3, 4):
        quality.get_by_label(f"Maximum characters in the top {n}-gram", exact=True).fill("0.3")

    form.get_by_role("button", name="Clean").click()
    error = language.locator(".field-error")
    error.wait_for()
    assert "unknown language code 'xx'" in error.inner_text()
    language.get_by_label("Keep languages", exact=True).fill("en\nhi\nkn\nzh")
    form.get_by_role("button", name="Clean").click()

    try:
        page.wait_for_url(re.compile(r"#/datasets/clean/j-[0-9a-f]+$"))
    except Exception:
        errors = form.locator(".field-error").all_inner_texts()
        raise AssertionError(f"not submitted: {errors}") from None
    page.wait_for_function(
        "() => document.querySelector('.jobs-table tbody tr')?.dataset.status === 'succeeded'",
        timeout=180_000,
    )
    table = page.get_by_test_id("clean-steps")
    table.wait_for()
    job_id = page.url.rsplit("/", 1)[-1]
    log = page.request.get(
        f"/api/jobs/{job_id}/log", headers={"Authorization": f"Bearer {ui.token}"}
    ).json()["text"]
    assert "progress: 100.0 %" in log and "ETA" in log, log[-2000:]

    def cells(row: str) -> list[str]:
        return table.locator(f"tr[data-step={row}] td").all_inner_texts()

    assert cells("exact_dedup")[2] == str(len(corpus.exact_copies))
    assert cells("near_dedup")[2] == str(len(corpus.near_copies))
    assert "1 masked" in cells("pii")[2]
    before, after = (int(x.replace(",", "")) for x in cells("language")[1].split(" → "))
    assert before > after > 0
    assert re.match(r"[\d,]+ → [\d,]+", cells("language")[4])  # tokens, with the tokenizer

    langs = page.get_by_test_id("clean-languages")
    for lang in ("fr", "de", "es", "ta"):
        assert langs.locator(f"tr[data-lang={lang}] td").nth(1).inner_text().endswith("→ 0")
    for lang in ("en", "hi", "kn", "zh"):
        assert not langs.locator(f"tr[data-lang={lang}] td").nth(1).inner_text().endswith("→ 0")

    examples = page.get_by_test_id("clean-examples")
    near = examples.locator("details[data-step=near_dedup]")
    near.locator("summary").click()
    assert "copy of licences/licences.jsonl" in near.inner_text()
    lang_examples = examples.locator("details[data-step=language]")
    lang_examples.locator("summary").click()
    assert "is not kept" in lang_examples.inner_text()
    screenshot(page, "datasets-clean")

    # The new dataset is a normal one: offered by the picker, and a run trains on it.
    page.get_by_role("link", name="Launch a run on it").click()
    page.wait_for_url(re.compile(r"#/launch\?dataset="))
    dataset = page.get_by_label("Dataset directory", exact=True)
    dataset.wait_for()
    assert dataset.input_value() == str(data_dir.resolve() / "datasets" / name)
    page.get_by_label("Run name").fill("ui on cleaned data")
    page.get_by_label("Max steps", exact=True).fill("4")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"#/runs/[^/?]+$"))
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=300_000)
    run_id = page.url.rsplit("/", 1)[-1]
    run = page.request.get(
        f"/api/runs/{run_id}", headers={"Authorization": f"Bearer {ui.token}"}
    ).json()
    assert run["config"]["data"]["dataset_dir"] == str(data_dir.resolve() / "datasets" / name)
