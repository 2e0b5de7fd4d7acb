"""Teams in a real browser: an admin creates an operator and a viewer on the Users page; the
operator signs in with name and password and launches a run; the viewer opens it, cannot cancel
it and reads why; the admin reads the three actions on the Audit page.

The API alone (no worker: the run stays queued, so it can be cancelled throughout)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.ui import UI, link_demo, screenshot


def _create_user(page: Any, name: str, role: str) -> str:
    form = page.get_by_role("form", name="New user")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Role").select_option(role)
    form.get_by_role("button", name="Create user").click()
    secret = page.get_by_test_id("one-time-password")
    secret.wait_for()
    assert name in secret.inner_text()
    password = secret.locator("code").inner_text()
    page.get_by_role("button", name="Done").click()
    page.locator(f"tr[data-user='{name}']").wait_for()
    return password


def _sign_in(browser: Any, url: str, name: str, password: str) -> UI:
    ui = UI(browser, url, "", logged_in=False)
    page = ui.page
    page.goto("/")
    page.wait_for_url("**/#/login")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/#/runs")
    page.get_by_test_id("whoami").wait_for()
    assert name in page.get_by_test_id("whoami").inner_text()
    return ui


def test_admin_operator_viewer_and_the_audit_page(
    built_frontend: Path, browser: Any, api_only: Any, tiny_assets: dict[str, Path]
) -> None:
    panel = api_only
    link_demo(panel.data_dir, tiny_assets)
    admin = UI(browser, panel.url, panel.token)  # the panel's single token: the first admin
    uis = [admin]
    try:
        page = admin.goto("/users")
        page.get_by_role("heading", name="Users").wait_for()
        operator_password = _create_user(page, "opal", "operator")
        viewer_password = _create_user(page, "vera", "viewer")
        screenshot(page, "users")

        operator = _sign_in(browser, panel.url, "opal", operator_password)
        uis.append(operator)
        op = operator.goto("/launch")
        op.get_by_label("Run name").fill("opal's run")
        op.get_by_label("Max steps", exact=True).fill("16")
        op.get_by_role("button", name="Launch run").click()
        op.wait_for_url(re.compile(r"#/runs/[^/?]+$"))
        run_id = op.url.rsplit("/", 1)[-1]
        op.get_by_test_id("run-owner").wait_for()
        assert "opal" in op.get_by_test_id("run-owner").inner_text()
        assert op.get_by_role("button", name="Cancel", exact=True).is_enabled()

        viewer = _sign_in(browser, panel.url, "vera", viewer_password)
        uis.append(viewer)
        vp = viewer.goto(f"/runs/{run_id}")
        cancel = vp.get_by_role("button", name="Cancel", exact=True)
        cancel.wait_for()
        assert cancel.is_disabled()
        reason = vp.get_by_test_id("run-actions-reason")
        assert "viewer" in reason.inner_text(), reason.inner_text()
        assert "viewer" in (cancel.get_attribute("title") or "")
        assert vp.get_by_test_id("run-owner").inner_text().endswith("opal")
        screenshot(vp, "viewer-cannot-cancel")
        # The viewer has no Users or Audit page in its menu.
        assert vp.get_by_role("link", name="Audit").count() == 0

        page = admin.goto("/audit")
        page.get_by_role("heading", name="Audit log").wait_for()
        rows = page.locator("tr[data-action]")
        rows.first.wait_for()
        seen = [
            (r.get_attribute("data-actor"), r.get_attribute("data-action"), r.inner_text())
            for r in rows.all()
        ]
        assert any(a == "admin" and act == "user.create" and "user/opal" in t for a, act, t in seen)
        assert any(a == "admin" and act == "user.create" and "user/vera" in t for a, act, t in seen)
        assert any(
            a == "opal" and act == "run.create" and f"run/{run_id}" in t for a, act, t in seen
        )
        # Filtered by user, only the operator's actions remain.
        page.get_by_label("User").fill("opal")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('tr[data-actor]')].every("
            "r => r.dataset.actor === 'opal')"
        )
        screenshot(page, "audit")
    finally:
        for ui in uis:
            ui.close()
    for ui in uis:
        assert not ui.console_errors, ui.console_errors
