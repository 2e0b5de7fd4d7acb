"""Runs list with 1,000 runs: API page latency and the page in real Chromium, against 10 runs.

    python bench/bench_runs_list.py            # baseline 10 runs vs 1,000 runs

A real API (embedded broker, SQLite, no worker: the runs stay queued) is filled through
``POST /api/runs``; then ``GET /api/runs?limit=50`` is timed, and Debian's Chromium loads
``#/runs`` (first row drawn), pages to the last page, and filters by status (a click).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx
from _panel import percentile, start_panel, tiny_assets

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def fill(client: httpx.Client, n: int, assets: dict[str, Path]) -> float:
    config = {
        "model": {"model_name_or_path": str(assets["model"]), "tokenizer_name_or_path": None},
        "data": {"dataset_dir": str(assets["corpus"])},
    }
    t0 = time.perf_counter()
    for i in range(n):
        r = client.post(
            "/api/runs", json={"name": f"bench {i}", "preset": "tiny-demo", "config": config}
        )
        r.raise_for_status()
    return (time.perf_counter() - t0) / n


def api_page_ms(client: httpx.Client, offset: int) -> float:
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        client.get("/api/runs", params={"limit": 50, "offset": offset}).raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return percentile(times, 50)


def browser_ms(url: str, token: str, n: int) -> tuple[float, float, float]:
    """ms to the first row, per Next click (nan with one page), and for a status filter."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        ctx.add_init_script(f"localStorage.setItem('cpt-panel-token', {token!r})")
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto("/#/runs")
        page.locator("tr[data-run-id]").first.wait_for()
        first = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        pages = 0
        while page.locator("button:has-text('Next')").is_enabled() and pages < 30:
            before = page.locator("[data-testid=pager-text]").inner_text()
            page.locator("button:has-text('Next')").click()
            page.wait_for_function(
                "b => document.querySelector('[data-testid=pager-text]').innerText !== b",
                arg=before,
            )
            pages += 1
        paging = (time.perf_counter() - t0) * 1000 / pages if pages else float("nan")
        rows = page.locator("tr[data-run-id]").count()
        assert rows == (n % 50 or 50), f"last page shows {rows} rows"
        t0 = time.perf_counter()
        page.get_by_role("group", name="Filter by status").get_by_role(
            "button", name="failed"
        ).click()
        page.locator("[data-testid=pager-text]").filter(has_text="0 runs").wait_for()
        filtered = (time.perf_counter() - t0) * 1000
        browser.close()
    return first, paging, filtered


def main() -> None:
    assets = tiny_assets()
    rows = []
    for n in (10, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            panel = start_panel(Path(tmp) / "data", broker_url=None, allowed_roots=[assets["root"]])
            try:
                with panel.client() as c:
                    create_ms = fill(c, n, assets) * 1000
                    first_api, last_api = api_page_ms(c, 0), api_page_ms(c, max(0, n - 50))
                first, paging, filtered = browser_ms(panel.url, panel.token, n)
            finally:
                panel.stop()
        rows.append((n, create_ms, first_api, last_api, first, paging, filtered))
    print(
        "\n| runs | POST /api/runs mean | GET page 1 p50 | GET last page p50 | page: first row | per Next click | status filter |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, create_ms, a0, a1, first, paging, filtered in rows:
        label = f"{n} (baseline)" if n == 10 else str(n)
        print(
            f"| {label} | {create_ms:.1f} ms | {a0:.1f} ms | {a1:.1f} ms | {first:.0f} ms | {paging:.0f} ms | {filtered:.0f} ms |"
        )
    base, big = rows[0], rows[1]
    print(
        f"\n1,000 vs 10 runs: API page 1 x{big[2] / base[2]:.2f}, first row drawn x{big[4] / base[4]:.2f}"
    )


if __name__ == "__main__":
    main()
