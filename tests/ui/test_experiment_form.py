"""The new-experiment form's axis builder: a 2x2 built field by field (an enum as checkboxes,
a number field as a list), the run count checked by the server's preview, the JSON spec kept in
step, a bad value's 422 shown at its axis, listed combinations, and the experiment created from
the builder read back through the API. Its runs go to a queue no worker serves: nothing trains."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import UI, wait_until

pytestmark = [pytest.mark.browser]


def _spec_on_page(form: Any) -> dict[str, Any]:
    return json.loads(form.get_by_test_id("experiment-spec").input_value())


def test_builder_makes_a_2x2_and_the_server_gets_it(
    ui: UI, panel: Any, tiny_assets: dict[str, Path]
) -> None:
    corpus = tiny_assets["corpus"]
    queue = "nobody-" + uuid.uuid4().hex[:6]
    start = {
        "name": "built by hand " + queue,
        "preset": "tiny-demo",
        "base": {
            "data": {
                "eval_sets": {
                    "kn": str(corpus / "udhr_kn_Knda.txt"),
                    "en": str(corpus / "udhr_en_Latn.txt"),
                }
            },
            "launch": {"queue": queue},
        },
        "axes": {},
        "target": "kn",
        "retain": ["en"],
        "budget": {"steps": 10},
    }
    page = ui.goto("/experiments")
    form = page.get_by_test_id("new-experiment")
    spec_box = form.get_by_test_id("experiment-spec")
    wait_until(lambda: "axes" in spec_box.input_value(), 30, what="the preset's spec")
    form.get_by_test_id("experiment-advanced").locator("summary").click()
    spec_box.fill(json.dumps(start))
    count = form.get_by_test_id("experiment-count")
    # The JSON drives the builder: no axis, one run (the base).
    assert form.get_by_test_id("axis").count() == 0
    wait_until(lambda: count.get_attribute("data-checked") == "true", 30, what="the server's check")
    assert count.get_attribute("data-count") == "1"

    form.get_by_test_id("axis-add").click()
    axis = form.get_by_test_id("axis").nth(0)
    axis.get_by_test_id("axis-field").select_option("method.finetuning_type")
    axis.get_by_role("checkbox", name="lora", exact=True).check()
    axis.get_by_role("checkbox", name="full", exact=True).check()
    form.get_by_test_id("axis-add").click()
    axis = form.get_by_test_id("axis").nth(1)
    axis.get_by_test_id("axis-field").select_option("training.learning_rate")
    axis.get_by_test_id("axis-values").fill("1e-4, abc")

    # A value the server refuses: its 422 is shown at that axis (and in the list).
    error = form.get_by_test_id("axis-error-training.learning_rate")
    error.wait_for()
    assert "value 2" in error.inner_text()
    assert "training.learning_rate" in form.get_by_test_id("experiment-errors").inner_text()

    axis.get_by_test_id("axis-values").fill("1e-4, 2e-4")
    wait_until(
        lambda: (
            count.get_attribute("data-checked") == "true"
            and count.get_attribute("data-count") == "4"
        ),
        30,
        what="4 runs checked by the server",
    )
    assert form.get_by_test_id("experiment-errors").count() == 0
    assert form.get_by_test_id("experiment-preview").locator("li").count() == 4
    assert _spec_on_page(form)["axes"] == {
        "method.finetuning_type": ["lora", "full"],
        "training.learning_rate": [0.0001, 0.0002],
    }

    # Listed combinations: untick one, three runs, the JSON lists them.
    form.get_by_test_id("axis-mode-listed").check()
    combos = form.get_by_test_id("axis-combinations").locator("input[type=checkbox]")
    assert combos.count() == 4
    combos.nth(3).uncheck()
    wait_until(
        lambda: (
            count.get_attribute("data-checked") == "true"
            and count.get_attribute("data-count") == "3"
        ),
        30,
        what="3 runs checked by the server",
    )
    listed = _spec_on_page(form)
    assert "axes" not in listed
    assert listed["combinations"] == [
        {"method.finetuning_type": "lora", "training.learning_rate": 0.0001},
        {"method.finetuning_type": "lora", "training.learning_rate": 0.0002},
        {"method.finetuning_type": "full", "training.learning_rate": 0.0001},
    ]

    # Back to the full grid, created and launched: the server holds the builder's spec.
    form.get_by_test_id("axis-mode-grid").check()
    wait_until(lambda: count.get_attribute("data-count") == "4", 30, what="the grid again")
    form.get_by_test_id("experiment-launch").click()
    page.wait_for_url(re.compile(r"#/experiments/x-[0-9a-f]+$"))
    exp_id = page.url.rsplit("/", 1)[-1]
    with panel.client() as c:
        r = c.get(f"/api/experiments/{exp_id}")
        assert r.status_code == 200, r.text
        made = r.json()
    assert made["spec"]["axes"] == {
        "method.finetuning_type": ["lora", "full"],
        "training.learning_rate": [0.0001, 0.0002],
    }
    assert made["run_count"] == 4
    assert {
        (x["config"]["method"]["finetuning_type"], x["config"]["training"]["learning_rate"])
        for x in made["runs"]
    } == {
        ("lora", 0.0001),
        ("lora", 0.0002),
        ("full", 0.0001),
        ("full", 0.0002),
    }
