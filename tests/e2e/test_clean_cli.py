"""The clean job against the live panel (API + Celery worker): ``cpt-panel data clean`` prints
its progress and the report, bad input exits 1 naming the field; a cancel leaves nothing
visible and the same job given again resumes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cpt_contract.clean import LINEAGE_FILE
from tests.e2e.test_cli import cli
from tests.support.clean_corpus import build_corpus
from tests.support.panel import Panel
from tests.support.ui import wait_until

LICENCE = Path("/usr/share/common-licenses/GPL-3")
TERMINAL = ("succeeded", "failed", "cancelled")

pytestmark = pytest.mark.slow


def test_clean_from_the_cli(panel: Panel, tiny_assets: dict[str, Path]) -> None:
    corpus = build_corpus(panel.data_dir / "datasets" / f"cli-{uuid.uuid4().hex[:6]}")
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


def _job(panel: Panel, job_id: str) -> dict[str, Any]:
    with panel.client() as c:
        return dict(c.get(f"/api/jobs/{job_id}").json())


def _log(panel: Panel, job_id: str) -> str:
    with panel.client() as c:
        return str(c.get(f"/api/jobs/{job_id}/log").json()["text"])


def test_a_cancelled_clean_leaves_nothing_visible_and_resumes(panel: Panel) -> None:
    """Eight files of real licence text (repeated, numbered so none is a duplicate): cancelled
    after a checkpoint, no dataset appears (not in the picker, not under its name); the same job given
    again resumes after the files its checkpoint recorded and ends with every file."""
    src = panel.data_dir / "datasets" / f"big-{uuid.uuid4().hex[:6]}"
    src.mkdir(parents=True)
    paragraphs = [" ".join(p.split()) for p in LICENCE.read_text().split("\n\n") if p.strip()]
    for f in range(8):
        lines = (f"{n} {paragraphs[n % len(paragraphs)]}" for n in range(f * 6000, (f + 1) * 6000))
        (src / f"part-{f}.txt").write_text("\n".join(lines) + "\n")
    name = f"big-clean-{uuid.uuid4().hex[:6]}"
    body = {"kind": "clean", "params": {"sources": [str(src)], "name": name,
            "steps": [{"step": "quality", "min_words": 1}]}}  # fmt: skip
    with panel.client() as c:
        first = c.post("/api/jobs", json=body).json()
    root = panel.data_dir.resolve() / "datasets"
    # Cancelled once a checkpoint exists (after a file, 5 s after the start or the last one).
    wait_until(
        lambda: (
            list(root.glob(f".{name}.partial-*/state.pickle"))
            or _job(panel, first["id"])["status"] != "running"
        ),
        300,
        what="a checkpoint",
    )
    assert _job(panel, first["id"])["status"] == "running", "finished before any checkpoint"
    with panel.client() as c:
        assert c.post(f"/api/jobs/{first['id']}/cancel").status_code == 200
    wait_until(lambda: _job(panel, first["id"])["status"] == "cancelled", 60, what="cancelled")
    assert not (root / name).exists()
    assert [p.name for p in root.glob(f".{name}.partial-*")]  # kept, hidden, for the resume
    with panel.client() as c:
        picked = [f["path"] for f in c.get("/api/files", params={"kind": "dataset"}).json()]
    assert not any(name in p for p in picked), picked

    with panel.client() as c:
        second = c.post("/api/jobs", json=body).json()
    wait_until(lambda: _job(panel, second["id"])["status"] in TERMINAL, 300, what="second job")
    done = _job(panel, second["id"])
    assert done["status"] == "succeeded", done["status_reason"]
    assert done["result"]["resumed"] is True
    assert "resuming after file" in _log(panel, second["id"])
    assert done["result"]["before"]["documents"] == 8 * 6000
    assert sorted(p.name for p in (root / name).iterdir()) == sorted(
        [LINEAGE_FILE] + [f"{src.name}__part-{f}.txt" for f in range(8)]
    )
    assert not list(root.glob(f".{name}.partial-*"))
