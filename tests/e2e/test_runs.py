"""End to end on the shared panel: real API, real Celery worker on Redis, real torchrun training.

One short run (8 steps, a checkpoint every 4) is trained once per module and checked from
several angles; other tests cancel, resume, queue and refuse runs on the same worker.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e import (
    TERMINAL,
    alive,
    api_events,
    api_log,
    file_events,
    run_dir,
    submit,
    tiny_config,
    training_processes,
    wait_final,
    wait_for,
)
from tests.support.panel import Panel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(panel: Panel, tiny_assets: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Runs submitted back to back to the one-slot worker, all waited for.

    ``ok`` trains for real; ``procs`` passes the API's preflight (it does not know the worker's
    core count) and is refused by the worker before launch. Submitting them together also shows
    the worker takes one run at a time.
    """
    too_many = tiny_config(tiny_assets)
    too_many["launch"] = {
        "nproc_per_node": min(16, (os.cpu_count() or 1) + 1),
        "deepspeed": "zero2",
    }
    submitted = {
        "ok": submit(panel, tiny_config(tiny_assets), "e2e happy path"),
        "ok2": submit(panel, tiny_config(tiny_assets), "e2e second"),
        "procs": submit(panel, too_many, "e2e too many procs"),
    }
    assert all(r["status"] == "queued" for r in submitted.values())
    return {key: wait_final(panel, run["id"]) for key, run in submitted.items()}


@pytest.fixture(scope="module")
def finished_run(batch: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert batch["ok"]["status"] == "succeeded", batch["ok"]
    return batch["ok"]


def test_run_succeeds_with_progress_fields(finished_run: dict[str, Any]) -> None:
    assert finished_run["step"] == 8
    assert finished_run["max_steps"] == 8
    assert finished_run["loss"] is not None and finished_run["loss"] > 0
    assert finished_run["attempt"] == 1
    assert finished_run["started_at"] and finished_run["finished_at"]


def test_metrics_in_db_equal_events_file(panel: Panel, finished_run: dict[str, Any]) -> None:
    on_disk = file_events(panel, finished_run["id"])
    stored = api_events(panel, finished_run["id"])
    assert len(stored) == len(on_disk) >= 8 + 3  # start, 8 logs, checkpoints, eval, end
    for db, disk in zip(stored, on_disk, strict=True):
        assert (db["seq"], db["kind"], db["step"], db["attempt"]) == (
            disk["seq"],
            disk["kind"],
            disk["step"],
            1,
        )
        assert db["data"] == disk  # every value, exactly as written
    assert on_disk[0]["kind"] == "phase" and on_disk[-1]["kind"] == "end"
    assert any(e["kind"] == "start" for e in on_disk)


def test_log_in_db_equals_log_file(panel: Panel, finished_run: dict[str, Any]) -> None:
    log_file = run_dir(panel, finished_run["id"]) / "logs" / "attempt-1.log"
    on_disk = log_file.read_bytes().decode("utf-8", errors="replace")  # keep progress bars' \r
    assert "torchrun" in on_disk and "train_runtime" in on_disk
    assert api_log(panel, finished_run["id"], attempt=1) == on_disk


def test_checkpoints_listed_and_downloadable(panel: Panel, finished_run: dict[str, Any]) -> None:
    with panel.client() as c:
        listed = c.get(f"/api/runs/{finished_run['id']}/checkpoints").json()
        names = {ck["name"]: ck for ck in listed}
        assert {"checkpoint-4", "checkpoint-8"} <= set(names), listed
        assert names["checkpoint-4"]["step"] == 4 and names["checkpoint-4"]["exists"]
        r = c.get(f"/api/runs/{finished_run['id']}/checkpoints/checkpoint-4/download")
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        members = [m.name for m in tar.getmembers()]
        state = next(m for m in members if m.endswith("trainer_state.json"))
        assert b'"global_step": 4' in tar.extractfile(state).read()  # type: ignore[union-attr]


def test_resume_continues_step_numbering_and_seq(
    panel: Panel, finished_run: dict[str, Any]
) -> None:
    run_id = finished_run["id"]
    seq_before = max(e["seq"] for e in file_events(panel, run_id))
    with panel.client() as c:
        r = c.post(f"/api/runs/{run_id}/resume", json={"checkpoint": "checkpoint-4"})
    assert r.status_code == 200, r.text
    assert r.json()["attempt"] == 2 and r.json()["status"] == "queued"
    final = wait_final(panel, run_id)
    assert final["status"] == "succeeded", final

    on_disk = file_events(panel, run_id)
    second = [e for e in on_disk if e["seq"] > seq_before]
    start = next(e for e in second if e["kind"] == "start")  # after the phase markers
    assert str(start["resumed_from"]).endswith("checkpoint-4")
    first_log = next(e for e in second if e["kind"] == "log")
    assert first_log["step"] > 4  # continues after the checkpoint, not from 1
    seqs = [e["seq"] for e in on_disk]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # strictly rising across attempts
    stored = api_events(panel, run_id)
    assert [(e["seq"], e["attempt"]) for e in stored] == [
        (e["seq"], 1 if e["seq"] <= seq_before else 2) for e in on_disk
    ]
    log2 = run_dir(panel, run_id) / "logs" / "attempt-2.log"
    assert "resuming from" in log2.read_text()
    assert api_log(panel, run_id, attempt=2) == log2.read_bytes().decode("utf-8", errors="replace")


def test_cancel_kills_the_whole_process_tree(panel: Panel, tiny_assets: dict[str, Any]) -> None:
    """Two ranks (gloo on CPU), so the tree is torchrun plus two children."""
    config = tiny_config(tiny_assets, max_steps=2000, save_steps=1000)
    config["launch"] = {"nproc_per_node": 2}
    run = submit(panel, config, "e2e cancel")
    wait_for(
        panel,
        run["id"],
        lambda r: r["status"] == "running" and (r["step"] or 0) >= 1,
        180,
        "running past step 1",
    )
    procs = training_processes(run_dir(panel, run["id"]))
    assert len(procs) >= 3, f"expected torchrun and two ranks: {procs}"
    t0 = time.monotonic()
    with panel.client() as c:
        r = c.post(f"/api/runs/{run['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] in ("cancelling", "cancelled")
    while alive(procs) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    gone_after = time.monotonic() - t0
    assert not alive(procs), f"still alive after 10 s: {alive(procs)}"
    final = wait_for(panel, run["id"], lambda r: r["status"] == "cancelled", 10, "cancelled")
    print(
        f"cancel: process tree gone after {gone_after:.2f}s, status cancelled after {time.monotonic() - t0:.2f}s"
    )
    assert final["finished_at"]
    end = [e for e in file_events(panel, run["id"]) if e["kind"] == "end"]
    assert end and end[-1]["status"] == "cancelled"  # pretrain saw SIGTERM and said so


def test_runs_queued_on_a_single_slot_run_one_after_the_other(
    batch: dict[str, dict[str, Any]],
) -> None:
    runs = [batch["ok"], batch["ok2"], batch["procs"]]
    assert all(r["started_at"] and r["finished_at"] for r in runs), runs
    intervals = [
        (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
        for r in runs
    ]
    for (_, end), (next_start, _) in itertools.pairwise(intervals):
        assert end <= next_start, f"runs overlapped on a concurrency-1 worker: {intervals}"


def test_fp16_on_a_cpu_only_queue_is_refused_before_queuing(
    panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    """Preflight: the queue's only live worker is CPU-only (its heartbeat says so), so fp16 is a
    422 at training.precision on preview and on submit, and nothing is queued."""
    config = {**tiny_config(tiny_assets, precision="fp16"), "launch": {"deepspeed": "zero2"}}
    with panel.client() as c:
        before = c.get("/api/runs", params={"limit": 500}).json()["total"]
        for path in ("/api/runs/preview", "/api/runs"):
            r = c.post(path, json={"preset": "tiny-demo", "config": config})
            assert r.status_code == 422, r.text
            item = r.json()["detail"][0]
            assert item["loc"] == ["body", "config", "training", "precision"]
            assert "fp16 needs a GPU; choose bf16 or fp32" in item["msg"]
            assert "CPU-only" in item["msg"]
        assert c.get("/api/runs", params={"limit": 500}).json()["total"] == before


def test_a_refused_run_still_gets_its_run_dir(
    panel: Panel, batch: dict[str, dict[str, Any]]
) -> None:
    """The worker prepares the run dir before it refuses: the resolved config and the DS JSON."""
    run = batch["procs"]
    assert run["worker"]  # refused by the worker, after its claim
    assert not (run_dir(panel, run["id"]) / "output" / "events.jsonl").exists()  # nothing launched
    assert "not started: launch.nproc_per_node" in api_log(panel, run["id"], attempt=1)
    rdir = run_dir(panel, run["id"])
    assert json.loads((rdir / "config.json").read_text())["launch"]["deepspeed"] == "zero2"
    shipped = Path(__file__).parents[2] / "worker" / "ds_configs" / "ds_zero2_no_offload.json"
    assert (rdir / "ds_config.json").read_bytes() == shipped.read_bytes()


def test_more_processes_than_the_worker_has_fails_with_a_clear_reason(
    batch: dict[str, dict[str, Any]],
) -> None:
    """On a GPU box the limit is the GPU count; on this CPU box it is the core count (os.cpu_count())."""
    cores = os.cpu_count() or 1
    if cores >= 16:
        pytest.skip("the schema allows at most 16 processes per node")
    run = batch["procs"]
    assert run["status"] == "failed"
    assert f"launch.nproc_per_node={cores + 1}" in run["status_reason"]
    assert f"{cores} cores" in run["status_reason"]


def test_worker_heartbeat_describes_the_worker(panel: Panel) -> None:
    with panel.client() as c:
        workers = c.get("/api/workers").json()
    mine = [w for w in workers if w["queue"] == panel.env["CPT_QUEUE"]]
    assert len(mine) == 1 and mine[0]["alive"], workers
    assert mine[0]["concurrency"] == 1
    assert mine[0]["cpu_only"] is True and mine[0]["gpus"] == []  # no nvidia-smi on this box


def test_merge_is_a_tracked_job_that_does_not_wait_behind_training(
    panel: Panel, finished_run: dict[str, Any], tiny_assets: dict[str, Any]
) -> None:
    """POST .../merge → a merge job on the box's job slot → a plain HF model next to the run,
    done while a training run occupies the box's only training slot."""
    run_id = finished_run["id"]
    busy = submit(panel, tiny_config(tiny_assets, max_steps=4000, save_steps=4000), "busy box")
    wait_for(panel, busy["id"], lambda r: r["status"] == "running", 120, "running")
    with panel.client() as c:
        r = c.post(f"/api/runs/{run_id}/checkpoints/checkpoint-8/merge")
        assert r.status_code == 202, r.text
        output, job_id = Path(r.json()["output"]), r.json()["job_id"]
        assert output == run_dir(panel, run_id) / "merged" / "checkpoint-8"
        deadline = time.monotonic() + 180
        job = c.get(f"/api/jobs/{job_id}").json()
        while job["status"] not in TERMINAL:
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
            job = c.get(f"/api/jobs/{job_id}").json()
        training = c.get(f"/api/runs/{busy['id']}").json()
        job_log = c.get(f"/api/jobs/{job_id}/log").json()["text"]
        listed = c.get("/api/jobs", params={"run_id": run_id}).json()
        c.post(f"/api/runs/{busy['id']}/cancel")
    assert job["status"] == "succeeded", (job, job_log)
    assert job["kind"] == "merge" and job["result"]["output"] == str(output)
    assert job["result"]["size_bytes"] > 0 and job["duration_seconds"] > 0
    assert f"wrote {output}" in job_log  # merge_lora's last line, shipped to the API
    assert training["status"] == "running", "the merge waited for the training run"
    assert [j["id"] for j in listed] == [job_id]
    assert list(output.glob("*.safetensors"))
    config = json.loads((output / "config.json").read_text())
    assert config["vocab_size"] == 768  # the extended tokenizer's embeddings are merged in
