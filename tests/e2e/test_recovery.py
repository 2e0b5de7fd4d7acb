"""End to end without Redis (the embedded filesystem broker), then the failure cases on the
same panel: the API restarted in the middle of a run, and the worker killed with SIGKILL.

Real API, real worker, real torchrun; the panel's data dir holds the broker's queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.e2e import (
    alive,
    api_events,
    api_log,
    embedded_panel,
    file_events,
    run_dir,
    submit,
    tiny_config,
    training_processes,
    wait_final,
    wait_for,
)
from tests.support.panel import ROOT, Panel, kill_tree

pytestmark = pytest.mark.slow
LOST_SECONDS = 4


@pytest.fixture(scope="module")
def embedded(
    tmp_path_factory: pytest.TempPathFactory, tiny_assets: dict[str, Path]
) -> Iterator[Panel]:
    with embedded_panel(
        tmp_path_factory.mktemp("embedded"), tiny_assets, CPT_WORKER_LOST_SECONDS=str(LOST_SECONDS)
    ) as p:
        yield p


def _restart_api(panel: Panel, down_for: float) -> None:
    api = panel.procs[0]
    kill_tree(api)
    time.sleep(down_for)
    log = open(panel.data_dir / "api.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpt_cli.main", "serve"],
        cwd=ROOT,
        env=panel.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    panel.procs[0] = proc
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(panel.url + "/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the API did not come back")


def test_embedded_broker_run_survives_an_api_restart(
    embedded: Panel, tiny_assets: dict[str, Any]
) -> None:
    """The happy path without Redis; halfway the API goes down for 2 s and comes back.

    The run keeps training and logging meanwhile; the worker's shipper retries, so the
    database ends up with every event and every log byte.
    """
    assert "CPT_BROKER_URL" not in embedded.env
    run = submit(
        embedded, tiny_config(tiny_assets, max_steps=10, save_steps=5), "embedded + api restart"
    )
    wait_for(
        embedded,
        run["id"],
        lambda r: r["status"] == "running" and (r["step"] or 0) >= 1,
        120,
        "running",
    )
    _restart_api(embedded, down_for=2.0)
    final = wait_final(embedded, run["id"])
    assert final["status"] == "succeeded", final
    assert list((embedded.data_dir / "broker").iterdir())  # the filesystem broker carried the task
    on_disk = file_events(embedded, run["id"])
    assert on_disk[-1]["step"] == 10 and on_disk[-1]["kind"] == "end"
    stored = api_events(embedded, run["id"])
    assert len(stored) == len(on_disk)
    assert [e["data"] for e in stored] == on_disk
    log = (
        (run_dir(embedded, run["id"]) / "logs" / "attempt-1.log")
        .read_bytes()
        .decode(errors="replace")
    )
    assert api_log(embedded, run["id"], 1) == log


def test_killed_worker_run_is_lost_then_resumes_with_nothing_missing(
    embedded: Panel, tiny_assets: dict[str, Any]
) -> None:
    """kill -9 of the worker mid-run → attempt 1 ends "worker lost", no training left behind,
    and the run is requeued by itself (automatic resume); a new worker resumes it from the last
    checkpoint and first ships what the dead one never did
    (the dying training's last events, its ``end`` among them), so the database again equals
    events.jsonl and both attempt logs."""
    config = tiny_config(tiny_assets, max_steps=10, save_steps=2)
    run = submit(embedded, config, "worker crash")
    rid = run["id"]
    wait_for(
        embedded,
        rid,
        lambda r: r["status"] == "running" and (r["step"] or 0) >= 3,
        120,
        "past step 3",
    )
    procs = training_processes(run_dir(embedded, rid))
    assert procs
    worker = embedded.procs[-1]
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool, no chance to clean up
    worker.wait(timeout=10)
    t0 = time.monotonic()
    lost = wait_for(embedded, rid, lambda r: r["attempt"] == 2, LOST_SECONDS + 15, "restarted")
    assert lost["status"] == "queued", lost
    assert lost["attempt_log"][0]["reason"].startswith("worker lost"), lost
    print(f"worker lost detected after {time.monotonic() - t0:.1f}s (limit {LOST_SECONDS}s)")
    # torchrun got SIGTERM when its parent died (PR_SET_PDEATHSIG) and took its ranks down.
    deadline = time.monotonic() + 15
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(procs)
    print(f"training gone {time.monotonic() - t0:.1f}s after the worker was killed")
    for proc in left:
        proc.kill()
    assert not left, f"training outlived its worker: {left}"
    first_attempt = file_events(embedded, rid)
    assert first_attempt[-1]["kind"] == "end"  # written by the dying rank 0 ...
    # ... and usually never shipped (a quick shipper may have sent it before the kill): the
    # equality below proves the new worker shipped whatever was left.
    assert len(api_events(embedded, rid)) <= len(first_attempt)

    embedded.start_worker(concurrency=1)  # takes the requeued attempt 2 (resume from "last")
    final = wait_final(embedded, rid)
    assert final["status"] == "succeeded" and final["attempt"] == 2, final
    on_disk = file_events(embedded, rid)
    assert [e["data"] for e in api_events(embedded, rid)] == on_disk
    for attempt in (1, 2):
        log = (run_dir(embedded, rid) / "logs" / f"attempt-{attempt}.log").read_bytes()
        assert api_log(embedded, rid, attempt) == log.decode(errors="replace")
