"""The Settings page in Chromium: the Hub token is set once for the panel, checked against the
Hub endpoint on save (here the local account endpoint of ``tests/support/hub_api.py``: olah
answers no whoami), a refused token is an error at its field with nothing stored, a saved one
is shown only as set with its last check, never as itself, and it can be removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import launch
from tests.support.hub_api import HubApi
from tests.support.ui import UI

pytestmark = pytest.mark.browser

TOKEN = "hf_" + "BrowserSetToken" * 2


@pytest.fixture
def settings_ui(browser: Any, hub_api: HubApi, tmp_path: Path) -> Iterator[UI]:
    hub_api.accounts.users[TOKEN] = "carol"
    hub_api.accounts.repos["meta-llama/Gated-1B"] = {"gated": True, "readers": []}
    panel, _ = launch(tmp_path, {"CPT_HUB_ENDPOINT": hub_api.url})
    u = UI(browser, panel.url, panel.token)
    try:
        yield u
    finally:
        u.close()
        panel.stop()
    assert not u.console_errors, u.console_errors


def test_the_hub_token_is_set_checked_and_never_shown(settings_ui: UI) -> None:
    page = settings_ui.goto("/settings")
    state = page.get_by_test_id("hub-state")
    state.get_by_text("Not set").wait_for()
    form = page.get_by_role("form", name="Hub token")
    form.get_by_label("New token").fill("hf_" + "Refused" * 5)
    form.get_by_role("button", name="Check and save").click()
    form.get_by_role("alert").get_by_text("refused the token").wait_for()
    assert state.get_by_text("Not set").is_visible()  # nothing was stored
    form.get_by_label("New token").fill(TOKEN)
    form.get_by_label("Check access to a repo (optional)").fill("meta-llama/Gated-1B")
    form.get_by_role("button", name="Check and save").click()
    check = page.get_by_test_id("hub-check")
    check.get_by_text("no access to meta-llama/Gated-1B (HTTP 403").wait_for()
    assert "set here (stored encrypted)" in state.inner_text()
    assert form.get_by_label("New token").input_value() == ""
    page.reload()
    page.get_by_test_id("hub-check").get_by_text("no access to meta-llama/Gated-1B").wait_for()
    assert TOKEN not in page.content()
    form = page.get_by_role("form", name="Hub token")
    form.get_by_label("Check access to a repo (optional)").fill("")
    form.get_by_role("button", name="Check again").click()
    page.get_by_test_id("hub-check").get_by_text("valid as user carol").wait_for()
    form.get_by_role("button", name="Remove").click()
    page.get_by_test_id("hub-state").get_by_text("Not set").wait_for()
