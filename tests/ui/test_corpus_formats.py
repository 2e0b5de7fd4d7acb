"""Corpora in the shapes they ship in, in the browser: a ``.parquet`` file (text in ``text``, a
second ``url`` column beside it) and a ``.jsonl.zst`` file under the data dir's ``datasets/``
folder are scanned from the Datasets page (the scan job on the real worker: counts per file and
the first documents as cut), then trained on by a short run of the tiny model whose start event
names both files as its sources, with the scan's token counts. The run is launched from the
launch form (the Datasets page has no way to start a run from a scan): the parquet file as the
train file, the zstd file as a mixture source (advanced fields of the Data section)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tests.support.e2e import file_events, wait_final, worker_log_tail
from tests.support.panel import Panel
from tests.support.ui import UI, screenshot
from worker.data.documents import read_texts

pytestmark = pytest.mark.browser

BLOCK_SIZE = 64  # the tiny-demo preset's


def _write_corpora(folder: Path, corpus: Path) -> tuple[Path, Path, list[str], list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    kn = read_texts(corpus / "udhr_kn_Knda.txt")[0]
    te = read_texts(corpus / "udhr_te_Telu.txt")[0]
    parquet = folder / "kn-shard-00000.parquet"
    pq.write_table(
        pa.table({"text": kn, "url": [f"https://example.org/kn/{i}" for i in range(len(kn))]}),
        parquet,
    )
    zst = folder / "te-part-00000.jsonl.zst"
    body = "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in te).encode()
    zst.write_bytes(zstandard.ZstdCompressor().compress(body))
    return parquet, zst, kn, te


def _int(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


def test_parquet_and_zstd_corpora_scanned_then_trained_on(
    ui: UI, panel: Panel, tiny_assets: dict[str, Path]
) -> None:
    folder = panel.data_dir / "datasets" / "shipped-shapes"
    parquet, zst, kn, te = _write_corpora(folder, tiny_assets["corpus"])
    page = ui.page
    ui.goto("/datasets")
    paths = page.get_by_label("Files or directories", exact=True)
    paths.wait_for(timeout=30_000)
    paths.fill(str(folder))
    page.get_by_label("Tokenizer", exact=True).fill(str(tiny_assets["tokenizer_extended"]))
    page.get_by_label("Block size", exact=True).fill(str(BLOCK_SIZE))
    # The column that holds the text is the user's choice; the other column is left alone.
    column = page.get_by_label(re.compile(r"^text column$", re.I))
    assert column.input_value() == "text"
    column.fill("text")
    page.get_by_role("button", name="Scan").click()
    page.wait_for_function(
        "() => ['succeeded', 'failed'].includes("
        "document.querySelector('.jobs-table tbody tr')?.dataset.status)",
        timeout=180_000,
    )
    status = page.locator(".jobs-table tbody tr").first.get_attribute("data-status")
    assert status == "succeeded", (page.locator("main").inner_text(), worker_log_tail(panel))
    files = page.get_by_test_id("scan-files")
    files.wait_for()
    scanned: dict[str, int] = {}
    for path, docs in ((parquet, kn), (zst, te)):
        row = files.locator(f"tr[data-file='{path}']")
        cells = row.locator("td")
        assert _int(cells.nth(2).inner_text()) == len(docs), row.inner_text()
        scanned[path.name] = _int(cells.nth(4).inner_text())
        assert scanned[path.name] > _int(cells.nth(5).inner_text()) > 0, row.inner_text()
        first = row.get_by_test_id("first-docs").locator("li").first.inner_text()
        assert first.strip() and docs[0].startswith(first.strip()[:20]), (first, docs[0])
    totals = page.get_by_test_id("scan-totals").inner_text()
    assert f"{len(kn) + len(te):,} documents" in totals, totals
    assert f"{sum(scanned.values()):,} tokens" in totals, totals
    screenshot(page, "datasets-shipped-shapes", docs=False)

    # The run, from the launch form (tiny-demo preset: the tiny model and the scan's tokenizer):
    # the parquet file as the train file, the zstd file as a second mixture source.
    ui.goto("/launch")
    dataset = page.get_by_label("Dataset directory", exact=True)
    dataset.wait_for(timeout=30_000)
    dataset.fill("")
    page.locator("[data-section=data] details summary").click()
    page.get_by_label("Train file", exact=True).fill(str(parquet))
    page.get_by_label("Text column", exact=True).fill("text")
    page.get_by_label("Mixture sources", exact=True).fill(
        json.dumps([{"path": str(zst), "name": zst.name}])
    )
    page.get_by_label("Max eval samples", exact=True).fill("8")
    page.get_by_label("Run name").fill("shipped shapes")
    page.get_by_label("Max steps", exact=True).fill("3")
    page.get_by_label("Checkpoint every N steps").fill("3")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_url(re.compile(r"#/runs/[^/?]+$"), timeout=60_000)
    run_id = page.url.rsplit("/", 1)[-1]
    run = wait_final(panel, run_id, timeout=300)
    assert run["status"] == "succeeded", (run, worker_log_tail(panel))
    page.locator(".page-head .badge[data-status=succeeded]").wait_for(timeout=60_000)
    data = run["config"]["data"]
    assert (data["train_file"], data["dataset_dir"], run["config"]["training"]["max_steps"]) == (
        str(parquet),
        None,
        3,
    ), run["config"]

    start = next(e for e in file_events(panel, run_id) if e["kind"] == "start")
    sources = start["data_sources"]
    by_name = {s["name"]: s for s in sources}
    assert zst.name in by_name, sources
    assert by_name[zst.name]["tokens"] == scanned[zst.name], (sources, scanned)
    train = [s for s in sources if s["name"] != zst.name]
    assert len(train) == 1 and train[0]["files"] == 1, sources
    assert train[0]["tokens"] == scanned[parquet.name], (sources, scanned)
    assert train[0]["documents"] == len(kn), sources
    mix = page.get_by_test_id("data-mix")
    mix.wait_for(timeout=30_000)
    assert mix.locator(f"tr[data-source='{zst.name}']").count() == 1
