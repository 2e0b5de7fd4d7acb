"""Kannada, Devanagari and CJK text renders with real glyphs (no tofu) in logs, names and previews."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.ui import GLYPH_PRINTS, UI, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KANNADA = "ಕನ್ನಡ"
DEVANAGARI = "हिन्दी"
CJK = "中文"
NAME = f"{KANNADA}_{DEVANAGARI}_{CJK}"
#: Distinct letters of each script: real glyphs differ, tofu boxes are all alike.
SAMPLES = {"Kannada": ["ಕ", "ನ", "ಡ"], "Devanagari": ["ह", "न", "द"], "CJK": ["中", "文", "語"]}


def _assert_real_glyphs(element: Any) -> None:
    for script, chars in SAMPLES.items():
        prints = element.page.evaluate(GLYPH_PRINTS, [element.element_handle(), chars])
        assert "empty" not in prints, f"{script}: a character drew nothing: {prints}"
        assert len(set(prints)) == len(chars), f"{script}: glyphs look identical (tofu): {prints}"


def test_system_has_the_noto_fonts() -> None:
    out = subprocess.run(
        ["fc-list", ":", "family"], capture_output=True, text=True, check=True
    ).stdout
    for family in ("Noto Sans Kannada", "Noto Sans Devanagari", "Noto Sans CJK SC"):
        assert family in out, (
            f"{family} is not installed (apt-get install fonts-noto-core fonts-noto-cjk)"
        )


@pytest.fixture
def i18n_dataset(tiny_assets: dict[str, Path]) -> Path:
    """A corpus file named in three scripts, inside the allowed root (a hidden dir: pickers skip it)."""
    src = next(p for p in sorted(tiny_assets["root"].rglob("*.txt")) if p.stat().st_size > 1000)
    d = tiny_assets["root"] / ".ui-i18n" / NAME
    d.mkdir(parents=True, exist_ok=True)
    target = d / f"{NAME}.txt"
    if not target.exists():
        shutil.copyfile(src, target)
    return d


def test_non_latin_text_in_preview_name_and_logs(ui: UI, panel: Any, i18n_dataset: Path) -> None:
    page = ui.page
    ui.goto("/launch")
    page.get_by_label("Run name").fill(f"{KANNADA} {DEVANAGARI} {CJK} demo")
    page.get_by_label("Dataset directory", exact=True).fill(str(i18n_dataset))
    page.get_by_label("Max steps", exact=True).fill("2")
    preview = page.get_by_test_id("command-preview")
    wait_until(lambda: NAME in preview.inner_text(), 10, what="non-Latin path in the preview")
    _assert_real_glyphs(preview)
    screenshot(page, "launch-non-latin", full_page=False)

    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url("**/#/runs/*")
    title = page.locator(".run-title")
    assert title.inner_text() == f"{KANNADA} {DEVANAGARI} {CJK} demo"
    _assert_real_glyphs(title)

    # The training script logs the file it tokenizes: the name arrives through the real log pipeline.
    line = page.get_by_test_id("log").locator(".log-line", has_text=NAME).first
    line.wait_for(timeout=90_000)
    _assert_real_glyphs(line)
    # Text is not mangled on the way (UTF-8 byte offsets vs. characters).
    assert NAME in line.inner_text()
    page.locator(
        ".page-head .badge[data-status=succeeded], .page-head .badge[data-status=failed]"
    ).wait_for(timeout=90_000)
    line.scroll_into_view_if_needed()
    screenshot(page, "run-non-latin-log", full_page=False)
