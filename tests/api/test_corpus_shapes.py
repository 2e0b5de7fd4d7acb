"""Corpora in the shapes they ship in, as the API sees them: the dataset picker offers
directories of parquet / zstd / gzip shards and datasets saved by ``datasets``; a text column per
source is validated at its field (422 naming it, nothing stored); the scan job passes the column
to the engine as ``--text_column=<value>``. In-process (real app, real SQLite, real files)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from fastapi.testclient import TestClient

from cpt_contract.protocol import JobClaimOut
from cpt_contract.run_paths import JobPaths
from cpt_contract.settings import Settings
from tests.api.test_inprocess import client as client
from tests.api.test_pickers import _assets_root, _error_at, _paths
from worker.agent.jobs import tool_argv

ROOT = Path(__file__).resolve().parents[2]


def _shapes(root: Path) -> dict[str, Path]:
    out = {}
    out["parquet"] = root / "fineweb-like"
    out["parquet"].mkdir(parents=True)
    table = pa.table({"content": ["ಕನ್ನಡ ಪಠ್ಯ " * 40] * 50, "url": ["u"] * 50})
    pq.write_table(table, out["parquet"] / "000_00000.parquet")
    out["zst"] = root / "culturax-like"
    out["zst"].mkdir()
    body = b'{"text": "\\u0c95\\u0ca8\\u0ccd\\u0ca8\\u0ca1"}\n' * 200
    (out["zst"] / "kn_part_00000.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body))
    import datasets

    out["saved"] = root / "saved-kn"
    datasets.Dataset.from_dict({"text": ["ಕನ್ನಡ"] * 20}).save_to_disk(str(out["saved"]))
    out["arrow-only"] = root / "stray-arrow"
    out["arrow-only"].mkdir()
    (out["arrow-only"] / "cache-123.arrow").write_bytes(b"x")
    return out


def test_corpus_shapes_in_the_picker_and_the_text_column_at_its_field(
    client: TestClient, tmp_path: Path
) -> None:
    shapes = _shapes(_assets_root(client) / "corpora")
    offered = _paths(client, "dataset")
    for name in ("parquet", "zst", "saved"):
        assert str(shapes[name]) in offered, (name, offered)
    assert str(shapes["arrow-only"]) not in offered

    # The same shapes typed by hand pass submit's check; a bad column is a 422 at its field.
    good = {
        "data": {
            "dataset_dir": str(shapes["parquet"]),
            "text_column": "content",
            "data_sources": [{"path": str(shapes["zst"])}, {"path": str(shapes["saved"])}],
            "eval_sets": {"kn": {"path": str(shapes["saved"]), "text_column": "text"}},
        }
    }
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": good})
    assert r.status_code == 200, r.text
    bad = {
        "data": {
            "dataset_dir": str(shapes["parquet"]),
            "text_column": "--output_dir=/tmp",
            "data_sources": [{"path": str(shapes["zst"]), "text_column": ""}],
            "eval_sets": {"kn": {"path": str(shapes["saved"]), "text_column": "a b"}},
        }
    }
    errors = dict((tuple(loc), msg) for loc, msg in _error_at(client, bad))
    assert ("body", "config", "data", "text_column") in errors, errors
    assert ("body", "config", "data", "data_sources", 0, "text_column") in errors, errors
    assert ("body", "config", "data", "eval_sets", "kn", "text_column") in errors, errors
    assert "holds the text" in errors[("body", "config", "data", "text_column")]
    before = client.get("/api/runs").json()
    r = client.post("/api/runs", json={"preset": "tiny-demo", "config": bad})
    assert r.status_code == 422 and client.get("/api/runs").json() == before

    # A directory of .arrow files without a saved dataset's state.json is no dataset.
    errors = dict(
        (tuple(loc), msg)
        for loc, msg in _error_at(client, {"data": {"dataset_dir": str(shapes["arrow-only"])}})
    )
    assert "holds no corpus files" in errors[("body", "config", "data", "dataset_dir")]

    # The scan job: a bad column is a 422 at the field; a good one reaches the tool as one token.
    job = {"kind": "scan", "params": {"paths": [str(shapes["parquet"])], "text_column": "-x"}}
    r = client.post("/api/jobs", json=job)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
        "body",
        "params",
        "text_column",
    ]
    job["params"]["text_column"] = "content"
    r = client.post("/api/jobs", json=job)
    assert r.status_code == 201, r.text
    settings = Settings(data_dir=tmp_path / "w", allowed_roots=[_assets_root(client)])
    paths = JobPaths(tmp_path / "job")
    claim = JobClaimOut(kind="scan", params=job["params"], job_dir=str(paths.job_dir), lease="x")
    argv = tool_argv(settings, claim, paths)
    assert argv[-1] == "--text_column=content"
    paths.job_dir.mkdir()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    report = json.loads(paths.result.read_text())
    assert report["totals"]["documents"] == 50 and not report["skipped"], report
