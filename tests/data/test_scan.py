"""``scan`` (the dataset report) and the ``python -m worker.data`` commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from worker.data.encoding import Encoder
from worker.data.files import PackOptions, cache_file
from worker.data.scan import scan

ROOT = Path(__file__).resolve().parents[2]


def _messy(real_corpus: Path, tmp: Path) -> Path:
    d = tmp / "messy"
    shutil.copytree(real_corpus, d)
    (d / "empty.txt").write_bytes(b"")
    (d / "latin1.txt").write_bytes("Déjà vu\n".encode("latin-1"))
    (d / "short.txt").write_text("Hello world.\n", encoding="utf-8")
    (d / "notes.md").write_text("# not data\n", encoding="utf-8")
    return d


def test_scan_reports_files_scripts_tokens_and_skips(
    real_corpus: Path, mistral: Any, tmp_path: Path
) -> None:
    d = _messy(real_corpus, tmp_path)
    report = scan([d], mistral, block_size=256)
    rows = {Path(r["path"]).name: r for r in report["files"]}
    assert set(rows) == {p.name for p in d.iterdir()} - {"notes.md"}
    assert [i["path"] for i in report["ignored"]] == [str(d / "notes.md")]
    assert report["ignored"][0]["reason"].startswith("not one of .txt, .jsonl, .txt.gz")
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"empty.txt", "latin1.txt", "short.txt"}
    assert "is empty" in reasons["empty.txt"]
    assert "not valid UTF-8 (line 1" in reasons["latin1.txt"]
    assert reasons["short.txt"].startswith("shorter than one block of 256 tokens")
    zh, en, tang = rows["fortunes_chinese.txt"], rows["license_GPL-3.txt"], rows["tang300.jsonl"]
    assert zh["main_script"] == "Han" and en["main_script"] == "Latin"
    assert tang["main_script"] == "Han" and tang["documents"] > 300
    assert zh["scripts"]["Han"] > zh["scripts"]["Latin"]  # many fortunes quote English
    assert 0.95 * zh["characters"] < sum(zh["scripts"].values()) <= zh["characters"]
    assert zh["first_lines"][0] and len(zh["first_lines"]) == 3
    assert zh["bytes"] == (d / "fortunes_chinese.txt").stat().st_size
    # Tokens and blocks are what training will cache.
    cached = cache_file(
        d / "fortunes_chinese.txt", Encoder(mistral), PackOptions(256), tmp_path / "c"
    )
    assert (zh["tokens"], zh["blocks"]) == (cached.stats.tokens, cached.stats.blocks)
    assert zh["documents"] == cached.stats.documents
    assert report["totals"]["usable_files"] == len(rows) - 3
    assert json.loads(json.dumps(report)) == report  # JSON-ready


def test_scan_without_tokenizer(real_corpus: Path) -> None:
    report = scan(real_corpus / "song100.txt")
    (row,) = report["files"]
    assert "tokens" not in row and row["skip"] is None and row["documents"] > 100


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "worker.data", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip


def test_cli_prepare_then_scan(real_corpus: Path, mistral_fast_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = _cli("prepare", "--dataset_dir", str(real_corpus), "--tokenizer", str(mistral_fast_dir),
                "--block_size", "256", "--data_cache_dir", str(cache), "--json", str(tmp_path / "p.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for word in ("files", "documents", "tokens", "blocks", "time", "tokens/s"):
        assert any(line.startswith(word + " ") for line in proc.stdout.splitlines()), proc.stdout
    assert "[5/5]" in proc.stdout  # plain lines when not on a terminal
    summary = json.loads((tmp_path / "p.json").read_text())
    assert summary["files"] == 5 and summary["blocks"] > 0 and len(list(cache.iterdir())) == 5
    bad = _cli("stats", "--train_file", str(tmp_path / "nope.txt"), "--tokenizer", str(mistral_fast_dir),
               "--block_size", "256")  # fmt: skip
    assert bad.returncode == 2 and "--train_file" in bad.stderr
    scanned = _cli("scan", str(real_corpus), "--json", str(tmp_path / "s.json"))
    assert scanned.returncode == 0, scanned.stderr[-3000:]
    assert json.loads((tmp_path / "s.json").read_text())["totals"]["files"] == 5


def test_scan_rows_are_cached_by_the_data_cache_key(
    real_corpus: Path, mistral: Any, tmp_path: Path
) -> None:
    d = tmp_path / "corpus"
    shutil.copytree(real_corpus, d)
    cache = tmp_path / "cache"
    first = scan([d], mistral, block_size=256, cache_dir=cache)
    assert first["cached_files"] == 0
    again = scan([d], mistral, block_size=256, cache_dir=cache)
    assert again["cached_files"] == len(again["files"]) > 0
    strip = ("seconds", "cached")
    assert [{k: v for k, v in r.items() if k not in strip} for r in again["files"]] == [
        {k: v for k, v in r.items() if k not in strip} for r in first["files"]
    ]
    assert again["totals"] == first["totals"]
    # Another block size is another key; a changed file is a miss for that file only.
    assert scan([d], mistral, block_size=128, cache_dir=cache)["cached_files"] == 0
    changed = sorted(d.iterdir())[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\nmore text\n", encoding="utf-8")
    third = scan([d], mistral, block_size=256, cache_dir=cache)
    assert third["cached_files"] == len(third["files"]) - 1
    row = next(r for r in third["files"] if r["path"] == str(changed))
    assert (
        row["cached"] is False
        and row["characters"]
        > next(r for r in first["files"] if r["path"] == str(changed))["characters"]
    )
