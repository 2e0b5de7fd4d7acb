"""The launch form's pickers in Chromium against the real API and worker: the base-model picker
lists HF model dirs and no run folder, the adapter picker lists a finished LoRA run's
checkpoints by run name and step (no base model), the dataset picker no run output."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ui import UI, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _options(ui: UI, title: str) -> dict[str, str]:
    select = ui.page.locator(f"select.picker[aria-label^='{title}:']")
    wait_until(lambda: select.locator("option").count() > 1, 30, what=f"{title} options")
    got = select.evaluate("s => [...s.options].slice(1).map(o => [o.value, o.textContent])")
    return dict(got)


def test_pickers_list_usable_things_only(ui: UI, panel: Any) -> None:
    training = {"max_steps": 8, "save_steps": 4, "eval_steps": None, "logging_steps": 2}
    with panel.client() as c:
        r = c.post(
            "/api/runs",
            json={"name": "picker lora", "preset": "tiny-demo", "config": {"training": training}},
        )
        assert r.status_code == 201, r.text
        rid, out = r.json()["id"], r.json()["output_dir"]
        wait_until(
            lambda: c.get(f"/api/runs/{rid}").json()["status"] == "succeeded",
            240,
            interval=1,
            what="the LoRA run",
        )
        run_dir = str(c.get(f"/api/runs/{rid}").json()["output_dir"]).rsplit("/", 1)[0]

    ui.goto("/launch")
    models = _options(ui, "Base model")
    assert any(p.endswith("tiny-llama") for p in models), models
    assert not any(p.startswith(run_dir) for p in models), "a run folder is no base model"
    adapters = _options(ui, "Continue from adapter")
    assert adapters.get(f"{out}/checkpoint-8") == "picker lora · step 8", adapters
    assert adapters.get(f"{out}/checkpoint-4") == "picker lora · step 4", adapters
    assert not any(p.endswith("tiny-llama") for p in adapters), "a base model is no adapter"
    datasets = _options(ui, "Dataset directory")
    assert any(p.endswith("corpus") for p in datasets), datasets
    assert not any(p.startswith(run_dir) for p in datasets), "a run's output is no dataset"
