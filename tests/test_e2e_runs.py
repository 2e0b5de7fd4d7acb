"""End to end on the shared panel: real API, real Celery worker on Redis, real torchrun training.

One short run (8 steps, a checkpoint every 4) is trained once per module and checked from
several angles; other tests cancel, resume, queue and refuse runs on the same worker.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from typing import Any

import pytest

from tests.conftest import Panel
from tests.e2e_helpers import (
    alive,
    api_events,
    api_log,
    file_events,
    get_run,
    run_dir,
    submit,
    tiny_config,
    training_processes,
    wait_final,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(panel: Panel, tiny_assets: dict[str, Any]) -> dict[str, Any]:
    run = submit(panel, tiny_config(tiny_assets), "e2e happy path")
    assert run["status"] == "queued"
    final = wait_final(panel, run["id"])
    assert final["status"] == "succeeded", final
    return final


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
    assert on_disk[0]["kind"] == "start" and on_disk[-1]["kind"] == "end"


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
    assert second and second[0]["kind"] == "start"
    assert str(second[0]["resumed_from"]).endswith("checkpoint-4")
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
    run = submit(panel, tiny_config(tiny_assets, max_steps=2000, save_steps=1000), "e2e cancel")
    wait_for(
        panel,
        run["id"],
        lambda r: r["status"] == "running" and (r["step"] or 0) >= 1,
        120,
        "running past step 1",
    )
    procs = training_processes(run_dir(panel, run["id"]))
    assert len(procs) >= 2, "expected torchrun and at least one rank"  # launcher + rank 0
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
    panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    config = tiny_config(tiny_assets, max_steps=2, save_steps=100)
    first = submit(panel, config, "e2e queue 1")
    second = submit(panel, config, "e2e queue 2")
    a, b = wait_final(panel, first["id"]), wait_final(panel, second["id"])
    assert a["status"] == b["status"] == "succeeded", (a, b)
    intervals = sorted([(a["started_at"], a["finished_at"]), (b["started_at"], b["finished_at"])])
    assert intervals[0][1] <= intervals[1][0], (
        f"runs overlapped on a concurrency-1 worker: {intervals}"
    )


def test_fp16_on_a_cpu_worker_fails_with_a_clear_reason(
    panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    """This box has no GPU, so the worker trains on CPU; fp16 cannot run there."""
    run = submit(panel, tiny_config(tiny_assets, precision="fp16"), "e2e fp16 on cpu")
    final = wait_final(panel, run["id"], timeout=60)
    assert final["status"] == "failed"
    assert final["status_reason"] == "fp16 needs a GPU; choose bf16 or fp32"
    assert not (run_dir(panel, run["id"]) / "output" / "events.jsonl").exists()  # nothing launched


def test_more_processes_than_the_worker_has_fails_with_a_clear_reason(
    panel: Panel, tiny_assets: dict[str, Any]
) -> None:
    """On a GPU box the limit is the GPU count; on this CPU box it is the core count (os.cpu_count())."""
    cores = os.cpu_count() or 1
    if cores >= 16:
        pytest.skip("the schema allows at most 16 processes per node")
    config = tiny_config(tiny_assets)
    config["launch"] = {"nproc_per_node": cores + 1}
    run = submit(panel, config, "e2e too many procs")
    final = wait_final(panel, run["id"], timeout=60)
    assert final["status"] == "failed"
    assert f"launch.nproc_per_node={cores + 1}" in final["status_reason"]
    assert f"{cores} cores" in final["status_reason"]
    assert get_run(panel, run["id"])["worker"]  # refused by the worker, after its claim
