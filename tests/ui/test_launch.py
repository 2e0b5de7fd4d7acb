"""Launch a tiny run from the generated form and watch it live: status, charts, logs, checkpoints."""

from __future__ import annotations

import re

import pytest

from tests.support.ui import CANVAS_INK, STATUS_RECORDER, UI, screenshot, wait_until

ORDER = ["queued", "starting", "running", "succeeded"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_launch_tiny_run_from_form_and_watch_it_succeed(ui: UI) -> None:
    page = ui.page
    page.add_init_script(STATUS_RECORDER)
    ui.goto("/launch")

    # The form is generated from the schema: five sections, advanced fields collapsed.
    for section in ("Model", "Data", "Method", "Training", "Launch"):
        page.locator("fieldset legend", has_text=re.compile(f"^{section}$")).wait_for()
    assert not page.locator("[data-section=training] details").get_attribute("open")
    assert not page.get_by_label("Max grad norm", exact=True).is_visible()

    # "Tiny demo" is the default preset; its paths come from the server.
    assert page.get_by_label("Tiny demo").is_checked()
    assert page.get_by_label("Base model", exact=True).input_value().endswith("tiny-llama")
    # The pickers list what the API found under the allowed roots.
    picker = page.get_by_label(re.compile(r"^Base model: pick one of [1-9]"))
    picker.wait_for()  # the list arrives after the form (every dir under the roots is checked)
    assert picker.count() == 1

    page.get_by_label("Run name").fill("ui tiny demo")
    page.get_by_label("Max steps", exact=True).fill("16")
    page.get_by_label("Log every N steps").fill("2")
    page.get_by_label("Checkpoint every N steps").fill("8")
    page.get_by_label("Evaluate every N steps").fill("8")
    # An advanced field: opened from its collapsed section, then edited.
    page.locator("[data-section=data] details summary").click()
    page.get_by_label("Max eval samples", exact=True).fill("8")

    # The live torchrun preview follows the form.
    preview = page.get_by_test_id("command-preview")
    wait_until(
        lambda: (
            "--max_steps 16" in preview.inner_text() or "--max_steps=16" in preview.inner_text()
        ),
        10,
        what="preview with max_steps 16",
    )
    assert "torch.distributed.run" in preview.inner_text() or "torchrun" in preview.inner_text()
    # The estimate table: parameters, tokens per step, memory per device by component, time.
    est = page.get_by_test_id("model-estimate")
    est.wait_for()
    assert "trainable" in est.get_by_test_id("est-params").inner_text()
    for part in ("weights", "gradients", "optimizer", "activations", "memory-total"):
        assert int(est.get_by_test_id(f"est-{part}").get_attribute("data-bytes") or -1) >= 0, part
    assert "gradient checkpointing" in est.inner_text() and "Time" in est.inner_text()
    estimated = (est.get_attribute("data-total-params"), est.get_attribute("data-trainable-params"))
    screenshot(page, "launch")
    # The preview is copyable as one line, exactly as shown.
    ui.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy command").click()
    assert page.evaluate("navigator.clipboard.readText()") == preview.inner_text()

    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"#/runs/[^/?]+$"))
    run_id = page.url.rsplit("/", 1)[-1]
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)

    # The form's parameter counts are the ones the training script reported when it started.
    starts = page.request.get(
        f"/api/runs/{run_id}/events?kind=start", headers={"Authorization": f"Bearer {ui.token}"}
    ).json()
    start = starts[0]["data"]
    assert estimated == (str(start["total_params"]), str(start["trainable_params"])), start

    seen = page.evaluate("window.__statuses")
    assert seen[-1] == "succeeded", seen
    assert "running" in seen, seen
    assert seen == sorted(seen, key=ORDER.index), f"statuses out of order: {seen}"
    # No assertion on the first one: an idle worker claims and launches in ~0.15 s, often before
    # the run page's first fetch, so the page may honestly first show "running".

    # Charts are drawn: points in the data and coloured pixels on the canvas.
    loss = page.get_by_test_id("chart-loss")
    wait_until(lambda: int(loss.get_attribute("data-points") or 0) >= 4, 20, what="loss points")
    assert loss.evaluate(CANVAS_INK) > 50
    lr = page.get_by_test_id("chart-lr")
    assert int(lr.get_attribute("data-points") or 0) >= 4
    eval_chart = page.get_by_test_id("chart-eval")
    wait_until(
        lambda: int(eval_chart.get_attribute("data-points") or 0) >= 2, 20, what="eval points"
    )

    # Log lines are shown, from the real training process.
    log = page.get_by_test_id("log")
    wait_until(lambda: log.locator(".log-line").count() > 5, 20, what="log lines")

    # Checkpoints: step 8 and 16 were saved (keep limit 2).
    table = page.get_by_test_id("checkpoints")
    wait_until(lambda: table.locator("tbody tr").count() >= 1, 20, what="checkpoint rows")
    assert "checkpoint-16" in table.inner_text()
    # Rotated-away checkpoints are folded into one line, not a row each.
    assert table.get_by_test_id("deleted-checkpoints").count() <= 1
    assert "(deleted by the keep limit)" not in table.inner_text()
    # Download is a plain link (a multi-GB tar streams to disk), authenticated by ?token=.
    href = table.get_by_role("link", name="Download").first.get_attribute("href")
    assert href
    tar = page.request.get(href)
    assert tar.status == 200 and tar.headers["content-type"] == "application/x-tar"
    assert len(tar.body()) > 10_000

    # The config panel shows the command the worker ran.
    assert "16" in page.get_by_test_id("run-command").inner_text()

    # Drag across the loss chart zooms in; "Reset zoom" undoes it.
    box = loss.locator(".u-over").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    loss.get_by_role("button", name="Reset zoom").click()
    assert loss.get_by_role("button", name="Reset zoom").count() == 0

    # The x-axis switches to tokens seen and the log scale toggles without losing data.
    page.get_by_label("by tokens seen").check()
    page.get_by_label("log scale").check()
    wait_until(
        lambda: int(loss.get_attribute("data-points") or 0) >= 4,
        5,
        what="loss points after toggles",
    )
    assert loss.evaluate(CANVAS_INK) > 50
    page.get_by_label("by step").check()
    page.get_by_label("log scale").uncheck()
    screenshot(page, "run")

    # Resume from the first checkpoint: attempt 2 of the same run re-trains steps 9-16, and the
    # page follows it without a reload (status, attempt, log of the new attempt, charts).
    table.locator("tr", has_text="checkpoint-8").get_by_role(
        "button", name="Resume from here"
    ).click()
    dialog = page.get_by_role("dialog")
    assert "attempt 2" in dialog.inner_text() and "checkpoint-8" in dialog.inner_text()
    dialog.get_by_test_id("confirm").click()
    page.locator(".page-head .badge:not([data-status=succeeded])").wait_for()
    assert page.locator(".stat", has_text="Attempt").locator(".stat-value").inner_text() == "2"
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=240_000)
    wait_until(
        lambda: "attempt 2" in page.locator("#logs-h + .muted").inner_text(),
        30,
        what="log of attempt 2",
    )
    wait_until(lambda: log.locator(".log-line").count() > 5, 30, what="log lines of attempt 2")
    assert int(loss.get_attribute("data-points") or 0) >= 8
    # The first attempt's log stays readable from the menu.
    page.get_by_label("Show the log of attempt").select_option("1")
    log.locator(".log-line", has_text="attempt 1").first.wait_for()
    page.get_by_label("Show the log of attempt").select_option("")
    log.locator(".log-line", has_text="attempt 2").first.wait_for()

    # A merge is a tracked job: the page shows the server's status until it succeeded, then
    # offers the merged model as a download and as the base of a new run.
    row16 = table.locator("tr", has_text="checkpoint-16")
    row16.get_by_role("button", name="Merge & export").click()
    page.get_by_role("dialog").get_by_test_id("confirm").click()
    state = row16.get_by_test_id("merge-state")
    state.wait_for()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=merge-state]')?.dataset.status === 'succeeded'",
        timeout=120_000,
    )
    download = row16.get_by_role("link", name="Download merged model")
    tar = page.request.get(str(download.get_attribute("href")))
    assert tar.status == 200 and tar.headers["content-type"] == "application/x-tar"
    assert b"config.json" in tar.body()
    merged_dir = state.locator(".mono").inner_text()
    assert merged_dir.endswith("/merged/checkpoint-16")
    screenshot(page, "run-merged")
    row16.get_by_role("button", name="Use as base model").click()
    page.wait_for_url("**/#/launch?base=*")
    base = page.locator("[data-field='model.model_name_or_path'] input[type=text]")
    base.wait_for()
    page.wait_for_function(
        "(want) => document.querySelector(\"[data-field='model.model_name_or_path'] input\")?.value === want",
        arg=merged_dir,
    )

    # The runs list shows it with its numbers.
    ui.goto("/runs")
    row = page.locator(f"tr[data-run-id='{run_id}']")
    row.wait_for()
    assert row.get_attribute("data-status") == "succeeded"
    assert "16/16" in row.inner_text()
    assert "LoRA" in row.inner_text()
    screenshot(page, "runs")
