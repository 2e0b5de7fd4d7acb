"""Comparable by construction, in Chromium against the real API and worker (tiny model): extend a
tokenizer, "Use in a new run" (the base model comes with it), launch an extended-tokenizer and a
base-tokenizer LoRA run on the same held-out set with a small budget, and read Compare: both
scored the same characters in different numbers of tokens, with no warning; a third run with
another budget is flagged, naming the difference. The run page and Compare rough edges: a set
evaluated only at step 0, wall time and device-hours, the held-out chart's x-axis, samples at
one step once, "live" only while active, "Resume" only with a checkpoint, a malformed route."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BUDGET = 300  # characters of Hindi: a prefix of the held-out file, cut inside a document


def _config(heldout: Path, budget: int, **training: Any) -> dict[str, Any]:
    return {
        "data": {
            "validation_split_percentage": 0,
            "eval_sets": {"hi": {"path": str(heldout), "role": "target", "max_characters": budget}},
        },
        "training": {
            "max_steps": 4,
            "logging_steps": 1,
            "eval_steps": 2,
            "save_steps": 4,
            "eval_prompts": {"hi": ["सभी"]},
            "sample_max_new_tokens": 4,
            **training,
        },
    }


def _wait_status(c: Any, rid: str, want: str, timeout: float = 300) -> dict[str, Any]:
    def status() -> str:
        run = c.get(f"/api/runs/{rid}").json()
        assert run["status"] != "failed", run["status_reason"]
        return str(run["status"])

    wait_until(lambda: status() == want, timeout, interval=1, what=f"run {rid} {want}")
    return dict(c.get(f"/api/runs/{rid}").json())


def test_runs_with_two_tokenizers_score_the_same_text(
    ui: UI, panel: Any, tiny_assets: dict[str, Path]
) -> None:
    page = ui.page
    corpus = tiny_assets["corpus"]
    heldout = corpus / "udhr_hi_Deva.txt"
    model = str(tiny_assets["model"])

    # 1. Extend the tiny model's tokenizer with Hindi, then "Use in a new run".
    ui.goto("/tokenizers")
    page.get_by_label("Base tokenizer", exact=True).fill(model)
    page.get_by_label("Training text", exact=True).fill(str(corpus / "chatterbot_hindi.jsonl"))
    page.get_by_label("At most this many new tokens", exact=True).fill("120")
    page.get_by_label("Held-out text", exact=True).fill(str(heldout))
    page.get_by_label("Name", exact=True).fill("hindi-120")
    page.get_by_role("button", name="Extend tokenizer").click()
    page.wait_for_function(
        "() => document.querySelector('.jobs-table tbody tr')?.dataset.status === 'succeeded'",
        timeout=180_000,
    )
    page.get_by_test_id("fertility").wait_for()
    page.get_by_role("button", name="Use in a new run").click()
    page.wait_for_url("**/#/launch?tokenizer=*")
    tokenizer_box = page.locator("[data-field='model.tokenizer_name_or_path'] input[type=text]")
    model_box = page.locator("[data-field='model.model_name_or_path'] input[type=text]")
    wait_until(lambda: tokenizer_box.input_value().endswith("/output"), 20, what="tokenizer")
    extended = tokenizer_box.input_value()
    # The base model the tokenizer was extended from comes with it.
    assert model_box.input_value() == model
    # The tokenizer picker names the extension by its job (base, languages, size), apart from
    # the models' own tokenizers, and marks it when the chosen model is not its base.
    picker = page.locator("select.picker[aria-label^='Tokenizer:']")
    extended_opts = picker.locator("optgroup[data-group=extended] option")
    wait_until(lambda: extended_opts.count() >= 1, 30, what="the extended tokenizers group")
    option = picker.locator(f"option[value='{extended}']")
    label = option.inner_text()
    assert label.startswith("hindi-120 · tiny-llama + ") and "(chatterbot_hindi)" in label, label
    assert "base differs" not in label
    model_box.fill("/somewhere/else")
    wait_until(lambda: "base differs" in option.inner_text(), 5, what="the mismatch mark")
    model_box.fill(model)

    # 2. The extended-tokenizer run from the form, with a budget in characters.
    page.get_by_label("Run name").fill("hi extended")
    page.get_by_label("Max steps", exact=True).fill("4")
    page.get_by_label("Log every N steps").fill("1")
    page.get_by_label("Evaluate every N steps").fill("2")
    page.get_by_label("Checkpoint every N steps").fill("4")
    page.get_by_label("Validation split", exact=True).fill("0")
    sets = {"hi": {"path": str(heldout), "role": "target", "max_characters": BUDGET}}
    page.get_by_label("Held-out sets", exact=True).fill(json.dumps(sets))
    page.get_by_label("Sample prompts", exact=True).fill(json.dumps({"hi": ["सभी"]}))
    page.get_by_label("Sample length", exact=True).fill("4")
    preview = page.get_by_test_id("command-preview")
    wait_until(lambda: "max_characters" in preview.inner_text(), 10, what="the budget in argv")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"#/runs/[^/?]+$"))
    ext_id = page.url.rsplit("/", 1)[1]

    with panel.client() as c:
        # 3. Its base-tokenizer sibling, and a third run with another budget, cancelled after
        #    its step-0 evaluation (long, no checkpoint before the cancel).
        def launch(name: str, config: dict[str, Any]) -> str:
            r = c.post("/api/runs", json={"name": name, "preset": "tiny-demo", "config": config})
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        base_cfg = _config(heldout, BUDGET)
        base_cfg["model"] = {"model_name_or_path": model, "tokenizer_name_or_path": model}
        base_id = launch("hi base", base_cfg)
        other_cfg = _config(heldout, BUDGET // 2, max_steps=100_000, eval_steps=50_000,
                            save_steps=50_000)  # fmt: skip
        other_cfg["model"] = {"model_name_or_path": model, "tokenizer_name_or_path": model}
        other_id = launch("hi other budget", other_cfg)
        ext = _wait_status(c, ext_id, "succeeded")
        base = _wait_status(c, base_id, "succeeded")

        def trained_past_step_0() -> bool:
            evals = c.get(f"/api/runs/{other_id}/events", params={"kind": "eval"}).json()
            logs = c.get(f"/api/runs/{other_id}/events", params={"kind": "log"}).json()
            return bool(evals) and any(e["step"] >= 3 for e in logs)

        wait_until(trained_past_step_0, 240, interval=1, what="the step-0 eval, then training")
        assert c.post(f"/api/runs/{other_id}/cancel").status_code == 200
        other = _wait_status(c, other_id, "cancelled")
        assert other["step"] and other["step"] >= 3
        starts = {
            rid: c.get(f"/api/runs/{rid}/events", params={"kind": "start"}).json()[-1]["data"]
            for rid in (ext_id, base_id)
        }
    info = {rid: starts[rid]["eval_sets"][0] for rid in starts}
    assert info[ext_id]["characters"] == info[base_id]["characters"] == BUDGET
    assert info[ext_id]["text_sha256"] == info[base_id]["text_sha256"]
    assert info[ext_id]["tokens"] < info[base_id]["tokens"]  # Hindi merges: fewer tokens
    assert extended != model

    # 4. Compare the two: the same characters, different tokens, and no warning.
    ui.goto(f"/compare?ids={ext_id},{base_id}")
    summary = page.get_by_test_id("compare-summary")
    wait_until(lambda: summary.locator("tbody tr").count() == 2, 20, what="summary rows")
    scored = summary.locator("[data-testid=compare-scored]")
    wait_until(lambda: scored.count() == 2 and "characters" in scored.first.inner_text(), 20,
               what="the scored text")  # fmt: skip
    chars = {scored.nth(i).get_attribute("data-characters") for i in range(2)}
    tokens = {scored.nth(i).get_attribute("data-tokens") for i in range(2)}
    assert chars == {str(BUDGET)} and len(tokens) == 2
    assert f"{BUDGET} characters in" in scored.first.inner_text()
    assert page.get_by_test_id("compare-text-warning").count() == 0
    # Wall time and device-hours count every attempt: the server's duration over attempts.
    for rid, run in ((ext_id, ext), (base_id, base)):
        row = summary.locator(f"tr[data-run='{rid}']")
        assert row.get_by_test_id("compare-wall").inner_text().strip() not in ("", "\u2013")
        hours = float(row.get_by_test_id("compare-device-hours").inner_text())
        assert hours == pytest.approx(run["duration_seconds"] / 3600, abs=6e-4)
    screenshot(page, "compare-same-text")

    # 5. With the third run (half the budget): a warning naming the set and both texts; its
    #    set was evaluated only at step 0, which says so instead of a +0.000 change.
    ui.goto(f"/compare?ids={ext_id},{other_id}")
    warning = page.get_by_test_id("compare-text-warning")
    warning.wait_for(timeout=20_000)
    text = warning.inner_text()
    assert "hi:" in text and "different text" in text, text
    assert f"{BUDGET} characters" in text and f"{BUDGET // 2} characters" in text, text
    cell = summary.locator(f"tr[data-run='{other_id}'] [data-testid=compare-bpc]")
    wait_until(lambda: "not evaluated since step 0" in cell.inner_text(), 20, what="step 0 only")
    assert "+0.000" not in cell.inner_text()
    # Samples: the cancelled run has only step 0; the extended one ends at step 4.
    samples = page.get_by_test_id("compare-samples")
    samples.wait_for()
    assert "step 4" in samples.inner_text()

    # 6. The cancelled run's page: no "live" log, no Resume (no checkpoint), the change says
    #    "not evaluated since step 0", the held-out chart's x-axis reaches the last step, and
    #    the step-0 samples appear once.
    ui.goto(f"/runs/{other_id}")
    page.locator(".page-head .badge[data-status=cancelled]").wait_for()
    table = page.get_by_test_id("eval-table")
    table.wait_for()
    assert "not evaluated since step 0" in table.get_by_test_id("eval-change").inner_text()
    assert table.get_by_test_id("eval-characters").inner_text().strip() == str(BUDGET // 2)
    chart = page.get_by_test_id("chart-eval")
    wait_until(lambda: chart.get_attribute("data-x-end") == str(other["step"]) or
               int(chart.get_attribute("data-x-end") or 0) >= other["step"], 20,
               what="the x-axis to the last step")  # fmt: skip
    samples = page.get_by_test_id("samples")
    samples.wait_for()
    assert samples.locator("thead th").count() == 3  # prompt, mode, step 0: once
    assert page.get_by_test_id("log-live").count() == 0
    assert page.locator(".page-head").get_by_role("button", name="Resume").count() == 0
    # Nor does the runs table (the list says it has no checkpoint).
    ui.goto("/runs")
    row = page.locator(f"tr[data-run-id='{other_id}']")
    row.get_by_role("button", name="Clone").wait_for()
    assert row.get_by_role("button", name="Resume").count() == 0
    # The extended run has a checkpoint: Resume is offered there.
    ui.goto(f"/runs/{ext_id}")
    page.locator(".page-head .badge[data-status=succeeded]").wait_for()
    page.get_by_test_id("eval-table").wait_for()
    assert page.get_by_test_id("log-live").count() == 0

    # The form estimates each evaluation from the measured one of the same model and queue,
    # scoring and sampling apart, scaled by the characters it will score and the tokens it
    # will generate (the same budget and prompts here).
    ui.goto(f"/launch?from={ext_id}")
    est = page.get_by_test_id("est-eval")
    wait_until(lambda: "each \u00d7" in est.inner_text(), 30, what="the evaluation estimate")
    text = est.inner_text()
    assert f"scoring {BUDGET} characters about" in text, text
    # The newest succeeded run of the model on the queue: either of the two that finished.
    assert re.search(rf"measured by run ({ext_id}|{base_id})", text), text
    assert "sampling 2 generations of up to 4 tokens" in text, text
    assert "3 evaluations" in text  # steps 0, 2 and 4
    # The same numbers as the API's estimate; a flagged sampling budget is shown as such.
    with panel.client() as c:
        body = {"config": c.get(f"/api/runs/{ext_id}").json()["config"]}
        e = c.post("/api/runs/preview", json=body).json()["estimates"]["evaluation"]
    assert e["scoring_basis"] == e["sampling_basis"] == "measured_eval", e
    assert e["measured_run"] in (ext_id, base_id), e
    slow = "true" if e["sampling_exceeds_scoring"] else "false"
    assert est.get_attribute("data-slow-samples") == slow
    assert page.get_by_test_id("est-eval-slow-samples").count() == (1 if slow == "true" else 0)
    # And the training time from the same run's measured tokens/s (same model path and queue).
    assert "measured last time" in page.get_by_test_id("est-time").inner_text()
    # Checkpoint size (weights + optimizer state) x kept, against the runs volume's free space;
    # one checkpoint's estimate is within 10 % of those files of the run's checkpoint-4 (the
    # tokenizer and trainer-state files around them are small on a real model).
    disk = page.get_by_test_id("est-disk")
    assert "kept" in disk.inner_text() and "free on" in disk.inner_text(), disk.inner_text()
    ckpt = Path(ext["output_dir"]) / "checkpoint-4"
    measured = sum((ckpt / f).stat().st_size for f in ("adapter_model.safetensors", "optimizer.pt"))
    estimated = int(disk.get_attribute("data-bytes") or 0)  # 1 kept: 4 steps, a save every 4
    assert estimated == pytest.approx(measured, rel=0.10), (estimated, measured)

    # Run outputs and checkpoints hold tokenizers too, listed in their own group by run name.
    ui.goto("/launch")
    runs_group = page.locator("select.picker[aria-label^='Tokenizer:'] optgroup[data-group=runs]")
    wait_until(lambda: runs_group.locator("option").count() >= 1, 30, what="the runs group")
    assert "hi extended · " in runs_group.inner_text() or "hi base · " in runs_group.inner_text()

    # 7. A malformed route shows the not-found page, not a blank screen.
    for bad in ("/runs/%E0%A4%A", "/no-such-page"):
        ui.goto(bad)
        page.get_by_test_id("not-found").wait_for(timeout=5_000)
