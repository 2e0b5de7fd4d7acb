"""The download tool (``python -m worker.hub download``) against a real local Hub endpoint
(``tests/support/hub.py``: olah serving local git repos; ``huggingface_hub``'s real client):
a model lands whole, with its provenance, and only then under its name (the pickers never see a
half download); skip patterns, revisions, a dataset's split; 401/404 and too little free space end
with a reason that says what to do; a cancelled download resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from backend.services.files import find, problem
from cpt_contract.roots import Roots
from tests.support.hub import LocalHub

ROOT = Path(__file__).resolve().parents[2]


def _env(hub: LocalHub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "PYTHONPATH": str(ROOT)}


def _argv(dest: Path, result: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "worker.hub", "download", f"--dest_root={dest}",
            f"--json={result}", *flags]  # fmt: skip


def _run(hub: LocalHub, dest: Path, result: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(dest, result, *flags), env=_env(hub), cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def _model_files(tiny_assets: dict[str, Path]) -> dict[str, bytes | Path]:
    model = tiny_assets["model"]
    files: dict[str, bytes | Path] = {p.name: p for p in model.iterdir() if p.is_file()}
    files["original/consolidated.pth"] = b"x" * 1000
    files["README.md"] = b"# tiny\n"
    return files


def test_a_model_downloads_whole_with_its_provenance(
    local_hub: LocalHub, tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    commit = local_hub.add_repo("org/tiny-llama", _model_files(tiny_assets), tags=("v1",))
    dest, result = tmp_path / "models", tmp_path / "r.json"
    done = _run(local_hub, dest, result, "--repo_id=org/tiny-llama", "--skip=original/*")
    assert done.returncode == 0, done.stdout + done.stderr
    out = dest / "org--tiny-llama"
    answer = json.loads(result.read_text())
    assert answer["path"] == str(out) and answer["commit"] == commit
    assert not (out / "original").exists() and (out / "README.md").exists()
    assert problem("model", out) is None, "a complete download is a usable model"
    assert [m["path"] for m in find(Roots((dest,)), "model")] == [str(out)]
    source = json.loads((out / "cpt_source.json").read_text())
    assert (source["hub_id"], source["revision"], source["commit"]) == (
        "org/tiny-llama",
        "main",
        commit,
    )
    assert source["endpoint"] == local_hub.url and "original/*" in source["skipped"]
    for name in ("config.json", "model.safetensors"):
        assert (out / name).read_bytes() == (tiny_assets["model"] / name).read_bytes()
    lines = [json.loads(x[9:]) for x in done.stdout.splitlines() if x.startswith("progress ")]
    assert lines[-1]["bytes"] == lines[-1]["total_bytes"] == answer["bytes"] > 0
    assert lines[-1]["files"] == lines[-1]["total_files"] == answer["files"]
    # A tag is its own directory; the same target twice is refused, never overwritten.
    tagged = _run(local_hub, dest, result, "--repo_id=org/tiny-llama", "--revision=v1")
    assert tagged.returncode == 0 and (dest / "org--tiny-llama--v1" / "config.json").exists()
    again = _run(local_hub, dest, result, "--repo_id=org/tiny-llama")
    assert again.returncode == 2 and "already exists" in again.stdout


def test_bad_requests_end_with_a_reason(local_hub: LocalHub, tmp_path: Path) -> None:
    local_hub.add_repo("org/small", {"config.json": b"{}", "model.safetensors": b"0" * 5000})
    dest, result = tmp_path / "models", tmp_path / "r.json"
    cases = {
        ("--repo_id=org/missing",): "was not found (HTTP 401): check the id and the revision",
        ("--repo_id=org/small", "--revision=no-such"): "check the id and the revision",
        ("--repo_id=org/small", "--skip=*"): "no file of 'org/small' is left after --skip",
        ("--repo_id=org/small", f"--reserve_bytes={10**18}"): "not enough free space",
    }
    for flags, needle in cases.items():
        done = _run(local_hub, dest, result, *flags)
        last = done.stdout.strip().splitlines()[-1]
        assert done.returncode in (2, 3) and last.startswith("error: ") and needle in last, (
            flags, done.stdout, done.stderr,
        )  # fmt: skip
        assert not result.exists()
    assert find(Roots((dest,)), "model") == [] and not (dest / "org--small").exists()


def test_a_cancelled_download_resumes(local_hub: LocalHub, tmp_path: Path) -> None:
    big = os.urandom(48 * 1024 * 1024)
    local_hub.add_repo(
        "org/big", {"config.json": b'{"model_type": "llama"}', "model.safetensors": big}
    )
    dest, result = tmp_path / "models", tmp_path / "r.json"
    proc = subprocess.Popen(
        _argv(dest, result, "--repo_id=org/big"), env=_env(local_hub), cwd=ROOT,
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if line.startswith("progress "):
            seen = json.loads(line[9:])["bytes"]
            if seen > 1024 * 1024:
                break
    os.killpg(proc.pid, signal.SIGTERM)  # what a job cancel does to the tool's tree
    proc.wait(timeout=30)
    assert 0 < seen < len(big), seen
    assert not (dest / "org--big").exists() and find(Roots((dest,)), "model") == []
    partial = dest / ".partial" / "org--big"
    kept = sum(p.stat().st_size for p in partial.rglob("*") if p.is_file())
    assert kept > 0
    started = time.monotonic()
    done = _run(local_hub, dest, result, "--repo_id=org/big")
    assert done.returncode == 0, done.stdout + done.stderr
    first = next(x for x in done.stdout.splitlines() if x.startswith("downloading"))
    assert "0.0 MB already here" not in first, first  # it went on from the kept bytes
    got = (dest / "org--big" / "model.safetensors").read_bytes()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
    assert not partial.exists() and time.monotonic() - started < 240


def test_a_dataset_split_downloads_into_a_local_dataset(
    local_hub: LocalHub, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files: dict[str, bytes | Path] = {}
    for split in ("train", "test"):
        path = tmp_path / f"{split}.parquet"
        pq.write_table(pa.table({"content": [f"{split} ಕನ್ನಡ {i}" for i in range(50)]}), path)
        files[f"data/kn/{split}-00000-of-00001.parquet"] = path
        files[f"data/hi/{split}-00000-of-00001.parquet"] = path
    local_hub.add_repo("org/web", files, repo_type="dataset")
    dest, result = tmp_path / "datasets", tmp_path / "r.json"
    flags = ["--repo_id=org/web", "--repo_type=dataset", "--text_column=content"]
    flags += ["--allow=data/kn/train*", "--allow=data/kn/train/*"]
    done = _run(local_hub, dest, result, *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    out = dest / "org--web"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == [
        "data/kn/train-00000-of-00001.parquet"
    ]
    assert json.loads((out / "cpt_source.json").read_text())["text_column"] == "content"
    assert str(out / "data" / "kn") in [d["path"] for d in find(Roots((dest,)), "dataset")]
