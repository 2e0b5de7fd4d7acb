"""Log in with the API token (kept in localStorage), and out again, in a real browser."""

from __future__ import annotations

from typing import Any

from tests.support.ui import TOKEN_KEY, UI, screenshot


def test_login_rejects_a_bad_token_then_logs_in_and_out(browser: Any, panel: Any) -> None:
    ui = UI(browser, panel.url, panel.token, logged_in=False)
    page = ui.page
    try:
        page.goto("/")
        # Not logged in: every route leads to the login page.
        page.wait_for_url("**/#/login")
        token = page.get_by_label("API token")
        screenshot(page, "login")

        token.fill("not-the-token")
        page.get_by_role("button", name="Sign in").click()
        assert page.locator("#token-error").inner_text() == "That token was not accepted."
        assert page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") is None

        token.fill(panel.token)
        token.press("Enter")  # the form works from the keyboard
        page.wait_for_url("**/#/runs")
        page.get_by_role("heading", name="Runs").wait_for()
        assert page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") == panel.token

        # The token survives a reload: still logged in.
        page.reload()
        page.get_by_role("heading", name="Runs").wait_for()
        assert "#/runs" in page.url

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/#/login")
        assert page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") is None
        page.goto("/#/workers")
        page.wait_for_url("**/#/login")
        # Signing in returns to the page the user was sent away from.
        page.get_by_label("API token").fill(panel.token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/#/workers")
        page.get_by_role("heading", name="Workers").wait_for()
    finally:
        ui.close()
    assert not ui.console_errors, ui.console_errors


def test_a_revoked_token_sends_the_user_back_to_login(browser: Any, panel: Any) -> None:
    """A token the server answers 401 to is dropped, and the login page says why."""
    ui = UI(browser, panel.url, "stale-token-from-an-old-deploy")
    try:
        ui.goto("/runs")
        ui.page.wait_for_url("**/#/login")
        assert "rejected the saved token" in ui.page.locator(".notice").inner_text()
        assert ui.page.evaluate(f"localStorage.getItem('{TOKEN_KEY}')") is None
    finally:
        ui.close()
