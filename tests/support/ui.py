"""Browser-test helpers: the built frontend, Debian's Chromium driven by Playwright, screenshots.

Import the fixtures in a test module with ``from tests.support.ui import browser, built_frontend, ui``.
Nothing is mocked: pages talk to the real API started by ``tests/conftest.py``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
DIST = FRONTEND / "dist"
CHROMIUM = os.environ.get("CPT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots always go here; with CPT_UPDATE_SCREENSHOTS=1 also into docs/screenshots/.
ARTIFACTS = Path(os.environ.get("CPT_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
TOKEN_KEY = "cpt-panel-token"


def _newest_source_mtime() -> float:
    files = [FRONTEND / "package.json", FRONTEND / "index.html", FRONTEND / "vite.config.ts"]
    files += [p for p in (FRONTEND / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files if p.exists())


def build_frontend() -> None:
    """`npm run build` unless dist/ is newer than every source file."""
    index = DIST / "index.html"
    if index.exists() and index.stat().st_mtime >= _newest_source_mtime():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build the frontend (Node 20+)")
    if not (FRONTEND / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run([npm, "run", "build", "--silent"], cwd=FRONTEND, check=True)


@pytest.fixture(scope="session")
def built_frontend() -> Path:
    build_frontend()
    return DIST


_shared: dict[str, Any] = {}


def _close_shared() -> None:
    if "browser" in _shared:
        _shared.pop("browser").close()
        _shared.pop("playwright").stop()


def shared_browser() -> Any:
    """One Chromium per pytest process. The fixtures are imported into several test modules,
    which makes several fixture definitions; they must not start a second Playwright loop."""
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            pytest.fail(
                f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CPT_CHROMIUM)"
            )
        pw = sync_playwright().start()
        _shared["playwright"] = pw
        _shared["browser"] = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        atexit.register(_close_shared)
    return _shared["browser"]


@pytest.fixture(scope="session")
def browser(built_frontend: Path) -> Any:
    return shared_browser()


class UI:
    """One browser context against one panel; `page` starts logged in unless told otherwise."""

    def __init__(self, browser: Any, url: str, token: str, logged_in: bool = True) -> None:
        self.url = url
        self.token = token
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=url)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        # The UI must work under the server's Content-Security-Policy: a blocked script, style,
        # image or connection is an error of the test, whatever page it happens on.
        self.page.on("console", self._csp_violation)
        self.context.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
        )
        if logged_in:
            # Before the first page load only, so a logout inside the test stays logged out and
            # the first goto() is a real load (later hash routes are same-document navigations).
            self.context.add_init_script(
                f"if (!sessionStorage.getItem('cpt-test')) {{ sessionStorage.setItem('cpt-test', '1');"
                f" localStorage.setItem({TOKEN_KEY!r}, {token!r}); }}"
            )

    def _csp_violation(self, message: Any) -> None:
        text = message.text
        if "CSP violation" in text or "Content Security Policy" in text:
            self.console_errors.append(text)

    def goto(self, hash_route: str) -> Any:
        self.page.goto("/#" + hash_route.lstrip("#"))
        return self.page

    def close(self) -> None:
        self.context.close()


def link_demo(data_dir: Path, tiny_assets: dict[str, Path]) -> None:
    """Point the panel's tiny-demo preset (<data dir>/demo) at the test assets, as the worker's
    first start would have built them (the test panels run with CPT_BUILD_DEMO=false)."""
    demo = data_dir / "demo"
    if not demo.exists():
        demo.symlink_to(tiny_assets["root"], target_is_directory=True)


@pytest.fixture
def ui(
    built_frontend: Path, browser: Any, panel: Any, tiny_assets: dict[str, Path]
) -> Iterator[UI]:
    """A fresh, logged-in browser context on the session's panel (API + real worker)."""
    link_demo(panel.data_dir, tiny_assets)
    u = UI(browser, panel.url, panel.token)
    try:
        yield u
    finally:
        u.close()
    assert not u.console_errors, f"uncaught errors in the page: {u.console_errors}"


def screenshot(page: Any, name: str, full_page: bool = True, docs: bool = True) -> Path:
    """Save `<name>.png` into the artifacts dir, and into docs/screenshots when asked to
    (CPT_UPDATE_SCREENSHOTS=1; `docs=False` keeps a picture out of the docs)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        # The sticky top bar would otherwise be drawn in the middle of a scrolled page.
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("CPT_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")
    return path


def wait_until(
    pred: Callable[[], Any], timeout: float = 60, interval: float = 0.25, what: str = "condition"
) -> Any:
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


#: Records every status the run page's badge shows, in order (installed before any page script).
STATUS_RECORDER = """
window.__statuses = [];
new MutationObserver(() => {
  const b = document.querySelector('.page-head .badge');
  const s = b && b.dataset.status;
  if (s && window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""

#: Counts coloured (non-transparent) pixels of a chart's canvas: > 0 means uPlot drew something.
CANVAS_INK = """
(fig) => {
  const c = fig.querySelector('canvas');
  if (!c) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
    // series colours are saturated; axes and grid are grey
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
  return n;
}
"""

#: For each sample character, draws it in the element's font stack and returns a fingerprint of
#: the pixels. Missing glyphs all render as the same .notdef box ("tofu"), so distinct real
#: glyphs must give distinct, non-empty fingerprints.
GLYPH_PRINTS = """
([el, chars]) => {
  const family = getComputedStyle(el).fontFamily;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 64;
  const ctx = c.getContext('2d', {willReadFrequently: true});
  ctx.font = `40px ${family}`;
  return chars.map((ch) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.fillStyle = '#000';
    ctx.fillText(ch, 8, 48);
    const d = ctx.getImageData(0, 0, 64, 64).data;
    let h = 0, ink = 0;
    for (let i = 3; i < d.length; i += 4) {
      if (d[i] > 0) { ink++; h = (h * 31 + i * d[i]) >>> 0; }
    }
    return ink === 0 ? 'empty' : `${ink}:${h}`;
  });
}
"""
