"""Disks as a first-class resource: a worker reports its volumes, health names the one that is
low, and a run whose checkpoints cannot fit is refused at submit. The worker's measurement on
a real tmpfs; the API in-process (real app, real SQLite) fed by that report."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cpt_contract.settings import Settings
from tests.support.api import INPROC_WORKER as WORKER
from tests.support.api import client_for, settings_for


@pytest.fixture
def small_runs(tmp_path: Path) -> Iterator[Path]:
    """A worker's data dir whose runs volume is a 64 MiB tmpfs, filled to 1 MiB free."""
    runs = tmp_path / "wdata" / "runs"
    runs.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(runs)], check=True)
    try:
        st = os.statvfs(runs)
        (runs / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - (1 << 20)))
        yield runs
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)


def test_a_worker_reports_its_volumes_and_health_names_the_low_one(
    tmp_path: Path, small_runs: Path
) -> None:
    from worker.agent.heartbeat import volumes

    worker_settings = Settings(data_dir=tmp_path / "wdata", build_demo=False, _env_file=None)  # type: ignore[call-arg]
    reported = {v.name: v for v in volumes(worker_settings)}
    assert set(reported) >= {"data", "runs"}
    assert reported["runs"].path == str(small_runs) and reported["runs"].free_bytes < 2 << 20
    assert reported["data"].free_bytes > 100 << 20  # the data dir is on the big disk

    settings = settings_for(tmp_path, tmp_path / "assets")
    (tmp_path / "assets").mkdir()
    with client_for(settings) as c:
        assert c.get("/api/health").json()["status"] == "ok"
        beat = {
            "name": "gpu-box-1",
            "queue": "gpu",
            "volumes": [v.model_dump() for v in reported.values()],
        }
        assert (
            c.post("/api/internal/workers/heartbeat", json=beat, headers=WORKER).status_code == 200
        )
        r = c.get("/api/health")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "degraded" and body["database"] == "ok"
        (low,) = body["disks"]
        assert low.startswith(f"worker gpu-box-1: its runs volume ({small_runs}) has 0.0 GB free")
        workers = c.get("/api/workers").json()
        assert {v["name"] for v in workers[0]["volumes"]} >= {"data", "runs"}


def test_a_run_whose_checkpoints_cannot_fit_is_refused_at_submit(
    tmp_path: Path, small_runs: Path
) -> None:
    """A Llama-shaped 1B config, full weights: ~15 GB a checkpoint with AdamW state, 3 kept,
    against the queue's worker with 1 MiB free on its runs volume."""
    from worker.agent.heartbeat import volumes

    assets = tmp_path / "assets"
    model = assets / "llama-1b"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048,
        "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "max_position_embeddings": 4096}))  # fmt: skip
    (model / "model.safetensors").write_bytes(b"")
    (assets / "corpus").mkdir()
    (assets / "corpus" / "a.txt").write_text("text\n")
    settings = settings_for(tmp_path, assets)
    config = {
        "model": {"model_name_or_path": str(model), "tokenizer_name_or_path": None},
        "data": {"dataset_dir": str(assets / "corpus")},
        "method": {"finetuning_type": "full"},
        "training": {
            "save_total_limit": 3,
            "max_steps": 1000,
            "save_steps": 100,
            "precision": "fp32",  # a CPU worker
        },
        "launch": {"deepspeed": "none"},
    }
    worker_settings = Settings(data_dir=tmp_path / "wdata", build_demo=False, _env_file=None)  # type: ignore[call-arg]
    with client_for(settings) as c:
        beat = {"name": "gpu-box-1", "queue": "gpu", "cpu_only": True,
                "volumes": [v.model_dump() for v in volumes(worker_settings)]}  # fmt: skip
        assert (
            c.post("/api/internal/workers/heartbeat", json=beat, headers=WORKER).status_code == 200
        )
        r = c.post("/api/runs", json={"preset": "seed-lora", "config": config})
        assert r.status_code == 422, r.text
        (err,) = r.json()["detail"]
        assert err["loc"] == ["body", "config", "training", "save_total_limit"]
        assert f"worker gpu-box-1's runs volume ({small_runs}) has 0.0 GB free" in err["msg"]
        assert "short): free space there or lower training.save_total_limit" in err["msg"]
        assert c.get("/api/runs").json()["total"] == 0
