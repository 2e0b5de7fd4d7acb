"""``cpt-panel data clean`` against the live panel (API + Celery worker): the job runs on the
worker, the CLI prints its progress and the report; bad input exits 1 naming the field."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cpt_contract.clean import LINEAGE_FILE
from tests.e2e.test_cli import cli
from tests.support.clean_corpus import build_corpus
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


def test_clean_from_the_cli(panel: Panel, tiny_assets: dict[str, Path]) -> None:
    corpus = build_corpus(panel.data_dir / "corpora" / f"cli-{uuid.uuid4().hex[:6]}")
    name = f"cli-clean-{uuid.uuid4().hex[:6]}"
    sources = [str(s) for s in corpus.sources]
    bad = cli(panel, "data", "clean", *sources, "--name", name, "--step", "language keep=[en,xx]")
    assert bad.returncode == 1
    assert "params.steps.0.language.keep" in bad.stderr and "'xx'" in bad.stderr, bad.stderr

    done = cli(
        panel, "data", "clean", *sources, "--name", name,
        "--step", "language keep=[en,hi,kn,zh] 'thresholds={kn: 0.3}'",
        "--step", "exact_dedup", "--step", "near_dedup threshold=0.8",
        "--step", "quality min_words=3 max_top_2gram_ratio=0.3 max_top_3gram_ratio=0.3 "
        "max_top_4gram_ratio=0.3",
        "--tokenizer", str(tiny_assets["tokenizer"]), "--follow",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "progress: 100.0 %" in out and "ETA" in out
    assert "Each step" in out and "exact duplicate: 6" in out and "near duplicate: 4" in out
    dataset = panel.data_dir.resolve() / "datasets" / name
    assert f"dataset: {dataset}" in out.replace("\n", "")
    assert (dataset / LINEAGE_FILE).is_file()
    again = cli(panel, "data", "clean", *sources, "--name", name, "--step", "exact_dedup")
    assert again.returncode == 1 and "params.name" in again.stderr and "exists" in again.stderr
