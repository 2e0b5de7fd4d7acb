"""The API's 422 errors appear inline, next to the field they are about."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.ui import UI, screenshot, wait_until

pytestmark = pytest.mark.browser


def _error_of(page: Any, path: str) -> Any:
    # The message lives inside the field's own container, right under its input.
    return page.locator(f"[data-field='{path}'] .field-error")


def test_validation_error_is_shown_at_its_field(ui: UI) -> None:
    page = ui.page
    ui.goto("/launch")
    lr = page.get_by_label("Learning rate", exact=True)
    lr.fill("-1")
    err = _error_of(page, "training.learning_rate")
    err.wait_for()
    assert "greater than 0" in err.inner_text()
    assert lr.get_attribute("aria-invalid") == "true"
    # The input points at its message for screen readers.
    assert err.get_attribute("id") in (lr.get_attribute("aria-describedby") or "")
    # Only that field is flagged.
    assert page.locator(".field-invalid").count() == 1

    # Submitting anyway: the server refuses, nothing is created, focus goes to the field.
    page.get_by_role("button", name="Launch run").click()
    wait_until(
        lambda: (
            page.evaluate("document.activeElement && document.activeElement.id")
            == "f-training-learning_rate"
        ),
        10,
        what="focus on learning rate",
    )
    assert re.search(r"#/launch", page.url)
    screenshot(page, "launch-validation")

    # Fixing the value clears the message.
    lr.fill("0.001")
    err.wait_for(state="detached")


def test_cross_field_error_lands_on_the_named_field(ui: UI) -> None:
    """A model-level check (no data given) names its field in the message; the form places it there."""
    page = ui.page
    ui.goto("/launch")
    dataset = page.get_by_label("Dataset directory", exact=True)
    dataset.wait_for()
    dataset.fill("")
    err = _error_of(page, "data.dataset_dir")
    err.wait_for()
    assert "dataset_dir" in err.inner_text()


def test_form_is_keyboard_operable_and_every_input_is_labelled(ui: UI) -> None:
    page = ui.page
    ui.goto("/launch")
    page.get_by_label("Learning rate", exact=True).wait_for()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('form input, form select, form textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unlabelled == []
    # Tab reaches the preset radios and the advanced sections open with the keyboard.
    summary = page.locator("[data-section=training] details summary")
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("[data-section=training] details").get_attribute("open") is not None
    page.get_by_label("Max grad norm").focus()
    page.keyboard.type("2")
    assert page.get_by_label("Max grad norm").input_value().endswith("2")


def test_seed_preset_on_a_cpu_only_panel_is_refused_at_precision(ui: UI) -> None:
    """Preflight against the workers: this panel's only worker is CPU-only (its heartbeat says so),
    so the seed preset's fp16 is flagged at training.precision before anything is queued."""
    page = ui.page
    ui.goto("/launch")
    page.get_by_role("radiogroup", name="Preset").get_by_text("Seed LoRA").click()
    err = _error_of(page, "training.precision")
    err.wait_for(timeout=15_000)
    text = err.inner_text()
    assert "fp16 needs a GPU" in text and "CPU-only" in text
    screenshot(page, "launch-preflight")
