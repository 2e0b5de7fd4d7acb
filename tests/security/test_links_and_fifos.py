"""Files are read only as regular files under the roots, checked on the opened descriptor.

Found: a symlink swapped into a dataset after the worker's own check was followed (the outside
file was read and trained on); ``GET /api/files?kind=model`` opened a ``config.json`` that was a
link to a file outside the roots and offered its folder as a model; FIFOs were accepted as a
model, tokenizer, dataset or scan input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cpt_contract.settings import Settings
from tests.support.panel import ROOT

SECRET = "outside-secret-text"


def _outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET}\n" * 5)
    return secret


def test_a_link_swapped_in_after_the_workers_check_is_not_read(
    tmp_path: Path, settings: Settings, assets: dict[str, Path]
) -> None:
    from worker.agent.jobs import check_paths
    from worker.attempt.environment import child_env

    corpus = assets["corpus"]
    (corpus / "late.txt").write_text("harmless text\n")
    from cpt_contract.protocol import JobClaimOut

    claim = JobClaimOut.model_validate(
        {
            "kind": "scan",
            "params": {"paths": [str(corpus)]},
            "job_dir": str(tmp_path / "job"),
            "lease": "x",
        }
    )
    check_paths(settings, claim)  # the worker's check passes ...
    (corpus / "late.txt").unlink()  # ... then the file becomes a link to elsewhere
    (corpus / "late.txt").symlink_to(_outside(tmp_path))
    report = tmp_path / "report.json"
    env = child_env(use_cpu=True, nproc=1, concurrency=1, lease=None, roots=settings.roots)
    proc = subprocess.run(
        [sys.executable, "-m", "worker.data", "scan", str(corpus), "--json", str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    text = proc.stdout + proc.stderr + (report.read_text() if report.exists() else "")
    assert SECRET not in text
    assert "late.txt" in text and "outside the allowed roots" in text, text[-2000:]


def test_the_reader_refuses_a_link_and_a_fifo_without_blocking(
    tmp_path: Path, settings: Settings, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.data.documents import iter_document_batches
    from worker.data.errors import DataError

    for name, value in settings.roots.env().items():
        monkeypatch.setenv(name, value)
    data = settings.demo_dir / "corpus"
    (data / "link.txt").symlink_to(_outside(tmp_path))
    os.mkfifo(data / "pipe.txt")
    with pytest.raises(DataError, match="outside the allowed roots"):
        list(iter_document_batches(data / "link.txt"))
    with pytest.raises(DataError, match="is a FIFO"):  # no writer: an open would block
        list(iter_document_batches(data / "pipe.txt"))


def test_pickers_do_not_follow_a_config_link_out_of_the_roots(
    tmp_path: Path, client: TestClient, assets: dict[str, Path]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps({"model_type": "llama"}))
    model = assets["root"] / "models" / "linked"
    model.mkdir()
    (model / "config.json").symlink_to(elsewhere / "config.json")
    (model / "model.safetensors").write_bytes(b"")
    offered = [f["path"] for f in client.get("/api/files", params={"kind": "model"}).json()]
    assert str(assets["model"]) in offered and str(model) not in offered
    r = client.post(
        "/api/runs/preview",
        json={"preset": "tiny-demo", "config": {"model": {"model_name_or_path": str(model)}}},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "config", "model", "model_name_or_path"]


@pytest.mark.parametrize(
    "field", ["model_name_or_path", "tokenizer_name_or_path", "dataset_dir", "scan"]
)
def test_fifos_are_refused_at_every_path_field(
    client: TestClient, assets: dict[str, Path], field: str
) -> None:
    folder = assets["root"] / f"with-fifo-{field}"
    folder.mkdir()
    (folder / "a.txt").write_text("text\n")
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    os.mkfifo(folder / "b.txt")
    fifo = assets["root"] / f"fifo-{field}"
    os.mkfifo(fifo)
    for path in (folder, fifo):
        if field == "scan":
            r = client.post("/api/jobs", json={"kind": "scan", "params": {"paths": [str(path)]}})
            loc = ["body", "params", "paths", 0]
        else:
            section = "data" if field == "dataset_dir" else "model"
            config = {section: {field: str(path)}}
            r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
            loc = ["body", "config", section, field]
        assert r.status_code == 422, r.text
        errors = r.json()["detail"]
        assert any(e["loc"] == loc for e in errors), errors
        assert "FIFO" in json.dumps(errors) or "is a file" in json.dumps(errors), errors
