"""Overnight faults on a real panel (real API, real worker, real torchrun with 2 gloo ranks on
the tiny model): a hung rank, a killed or stopped worker, a killed rank, a stall.

Each test asserts the outcome docs/reliability.md promises and prints the measured time to the
terminal (or resumed) state.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from cpt_contract.runconfig.schema import deep_merge
from tests.support.e2e import (
    alive,
    api_events,
    embedded_panel,
    run_dir,
    submit,
    tiny_config,
    training_processes,
    wait_final,
    wait_for,
)
from tests.support.panel import Panel, start_panel

pytestmark = pytest.mark.slow
LOST_SECONDS = 6


@pytest.fixture(scope="module")
def faults(
    tmp_path_factory: pytest.TempPathFactory, tiny_assets: dict[str, Path]
) -> Iterator[Panel]:
    with embedded_panel(
        tmp_path_factory.mktemp("faults"),
        tiny_assets,
        CPT_WORKER_LOST_SECONDS=str(LOST_SECONDS),
        CPT_WORKER_NAME="faults-box",
        CPT_CANCEL_GRACE_SECONDS="3",
    ) as p:
        yield p


def two_ranks(assets: dict[str, Path], **training: Any) -> dict[str, Any]:
    return deep_merge(tiny_config(assets, **training), {"launch": {"nproc_per_node": 2}})


def ranks(rdir: Path) -> dict[int, psutil.Process]:
    """LOCAL_RANK → the rank's process (torchrun itself excluded)."""
    found: dict[int, psutil.Process] = {}
    for proc in training_processes(rdir):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if "LOCAL_RANK" in env and "torch.distributed.run" not in " ".join(proc.cmdline()):
            found[int(env["LOCAL_RANK"])] = proc
    return found


def wait_ranks(rdir: Path, count: int, timeout: float = 60) -> dict[int, psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ranks(rdir)
        if len(found) == count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{count} ranks never appeared in {rdir}")


def test_hung_rank_and_cancel_leaves_no_process(faults: Panel, tiny_assets: dict[str, Any]) -> None:
    """Rank 1 SIGSTOPped, then cancel: every process of the run is gone within 15 s (ranks live
    in their own sessions, so only tracking the tree finds them), and the log ends with one
    plain line instead of torchrun's SignalException traceback."""
    run = submit(faults, two_ranks(tiny_assets, max_steps=400, save_steps=1000), "hung + cancel")
    rid = run["id"]
    wait_for(faults, rid, lambda r: (r["step"] or 0) >= 2, 180, "past step 2")
    rdir = run_dir(faults, rid)
    procs = training_processes(rdir)
    rank = wait_ranks(rdir, 2)
    os.kill(rank[1].pid, signal.SIGSTOP)
    with faults.client() as c:
        assert c.post(f"/api/runs/{rid}/cancel").status_code == 200
    t0 = time.monotonic()
    while alive(procs) and time.monotonic() - t0 < 15:
        time.sleep(0.1)
    gone_after = time.monotonic() - t0
    left = alive(procs)
    for proc in left:
        proc.kill()
    assert not left, f"processes of the run outlived the cancel: {left}"
    final = wait_final(faults, rid, timeout=30)
    print(
        f"hung rank + cancel: no process left after {gone_after:.1f}s; "
        f"{final['status']} after {time.monotonic() - t0:.1f}s"
    )
    assert final["status"] == "cancelled", final
    log = (rdir / "logs" / "attempt-1.log").read_text(errors="replace").rstrip().splitlines()
    assert log[-1] == "[cpt-panel] cancelled on request", log[-20:]
    assert not any("SignalException" in line for line in log), log[-30:]


def loss_steps(panel: Panel, run_id: str) -> list[int]:
    with panel.client() as c:
        r = c.get(f"/api/runs/{run_id}/metrics", params={"keys": "loss", "max_points": 100000})
    assert r.status_code == 200, r.text
    return list(r.json()["series"]["loss"]["step"])


def test_worker_killed_and_restarted_at_once_resumes_to_success(
    faults: Panel, tiny_assets: dict[str, Any]
) -> None:
    """kill -9 of the worker after the first checkpoint, a new one (same name) at once: the
    new instance does not adopt the dead one's run, the API sees it lost and restarts it as
    attempt 2 from the checkpoint, which succeeds with every step's loss exactly once."""
    steps = 40
    run = submit(
        faults, tiny_config(tiny_assets, max_steps=steps, save_steps=4), "kill -9 + restart"
    )
    rid = run["id"]
    wait_for(faults, rid, lambda r: (r["step"] or 0) >= 5, 180, "past the first checkpoint")
    worker = faults.procs[-1]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    t0 = time.monotonic()
    faults.start_worker(concurrency=1)
    wait_for(faults, rid, lambda r: r["attempt"] == 2, LOST_SECONDS + 30, "restarted")
    restarted = time.monotonic() - t0
    final = wait_final(faults, rid, timeout=180)
    print(
        f"kill -9 + restart: attempt 2 queued after {restarted:.1f}s, "
        f"{final['status']} after {time.monotonic() - t0:.1f}s"
    )
    assert final["status"] == "succeeded" and final["attempt"] == 2, final
    assert final["attempt_log"][0]["reason"].startswith("worker lost"), final["attempt_log"]
    assert loss_steps(faults, rid) == list(range(1, steps + 1))


def test_worker_sigterm_saves_a_checkpoint_and_resumes(
    faults: Panel, tiny_assets: dict[str, Any]
) -> None:
    """SIGTERM to the worker (``docker compose restart``) mid-run, 2 ranks, no periodic save:
    every rank saves a checkpoint at the next step boundary, the attempt ends retryable and
    the run resumes from exactly that checkpoint on the next worker, to success."""
    steps = 60
    config = two_ranks(tiny_assets, max_steps=steps, save_steps=1000)
    run = submit(faults, config, "sigterm worker")
    rid = run["id"]
    wait_for(faults, rid, lambda r: (r["step"] or 0) >= 3, 180, "past step 3")
    worker = faults.procs[-1]
    t0 = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)
    worker.wait(timeout=60)
    stopped = time.monotonic() - t0
    faults.start_worker(concurrency=1)
    wait_for(faults, rid, lambda r: r["attempt"] == 2 and r["status"] == "running", 60, "resumed")
    resumed = time.monotonic() - t0
    final = wait_final(faults, rid, timeout=240)
    first = final["attempt_log"][0]
    print(
        f"worker SIGTERM: worker gone after {stopped:.1f}s, attempt 2 running after "
        f"{resumed:.1f}s, {final['status']} after {time.monotonic() - t0:.1f}s; {first}"
    )
    assert final["status"] == "succeeded" and final["attempt"] == 2, final
    assert first["reason"].startswith("worker stopped") and "saved" in first["reason"], first
    events = api_events(faults, rid)
    saved = [e for e in events if e["attempt"] == 1 and e["kind"] == "checkpoint"]
    assert len(saved) == 1, saved  # the preemption checkpoint, at no multiple of save_steps
    start2 = next(e for e in events if e["attempt"] == 2 and e["kind"] == "start")
    assert start2["data"]["resumed_from"].endswith(f"checkpoint-{saved[0]['step']}")
    assert loss_steps(faults, rid) == list(range(1, steps + 1))


def test_killed_rank_is_the_reason(faults: Panel, tiny_assets: dict[str, Any]) -> None:
    """kill -9 of rank 1: the reason names rank 1 and SIGKILL (torchrun's root cause), not
    rank 0's secondary gloo "Connection reset"; with ``max_restarts`` 0 it is not retried."""
    config = two_ranks(tiny_assets, max_steps=400, save_steps=1000, max_restarts=0)
    run = submit(faults, config, "kill rank 1")
    rid = run["id"]
    wait_for(faults, rid, lambda r: (r["step"] or 0) >= 2, 180, "past step 2")
    rank = wait_ranks(run_dir(faults, rid), 2)
    t0 = time.monotonic()
    rank[1].kill()
    final = wait_final(faults, rid, timeout=90)
    print(
        f"rank 1 SIGKILL: {final['status']} after {time.monotonic() - t0:.1f}s: "
        f"{final['status_reason']}"
    )
    assert final["status"] == "failed", final
    assert final["status_reason"].startswith("rank 1: killed by SIGKILL"), final
    assert "Connection reset" not in final["status_reason"]
    assert "not restarted" in final["status_reason"]


def test_hung_rank_without_cancel_fails_stalled_with_stacks(
    tmp_path: Path, tiny_assets: dict[str, Any]
) -> None:
    """Rank 1 SIGSTOPped and nobody cancels: after ``CPT_STALL_SECONDS`` without a step the
    run fails ``stalled: no step for N s at step S``, rank 0's Python stacks are in the log
    and the stopped rank is named (it cannot dump); no process of the run is left."""
    stall = 6
    panel = start_panel(
        tmp_path / "data",
        broker_url=None,
        allowed_roots=[tiny_assets["root"]],
        extra_env={"CPT_STALL_SECONDS": str(stall), "CPT_CANCEL_GRACE_SECONDS": "3"},
    )
    try:
        panel.start_worker(concurrency=1)
        config = two_ranks(tiny_assets, max_steps=400, save_steps=1000, max_restarts=0)
        rid = submit(panel, config, "stall")["id"]
        wait_for(panel, rid, lambda r: (r["step"] or 0) >= 2, 180, "past step 2")
        rdir = run_dir(panel, rid)
        procs = training_processes(rdir)
        rank = wait_ranks(rdir, 2)
        os.kill(rank[1].pid, signal.SIGSTOP)
        t0 = time.monotonic()
        final = wait_final(panel, rid, timeout=stall + 60)
        took = time.monotonic() - t0
        print(
            f"hung rank, no cancel: {final['status']} after {took:.1f}s "
            f"(CPT_STALL_SECONDS={stall}): {final['status_reason']}"
        )
        assert final["status"] == "failed", final
        assert final["status_reason"].startswith(f"stalled: no step for {stall}"), final
        assert " at step " in final["status_reason"]
        log = (rdir / "logs" / "attempt-1.log").read_text(errors="replace")
        assert "cannot dump its stack" in log
        assert "most recent call first" in log and 'File "' in log, log[-3000:]
        assert not alive(procs)
    finally:
        panel.stop()


def test_a_frozen_worker_is_fenced_before_its_run_moves_to_another(
    faults: Panel, tiny_assets: dict[str, Any]
) -> None:
    """The worker that holds a run is frozen (SIGSTOP of its process group; its ranks live in
    sessions of their own and go on) past the lost window, with a second worker on the queue.
    Found: the ranks trained 62 more steps and wrote a checkpoint after their attempt had been
    declared lost. Now they stop, saving nothing, once the worker has been silent for half
    the window; the run moves to the other worker; two attempts never train at once."""
    other = faults.start_worker(concurrency=1, extra_env={"CPT_WORKER_NAME": "faults-box-2"})
    frozen: Any = None
    try:
        config = tiny_config(tiny_assets, max_steps=400, save_steps=4)
        rid = submit(faults, config, "frozen worker")["id"]
        first = wait_for(faults, rid, lambda r: (r["step"] or 0) >= 5, 180, "past step 5")
        holder = first["worker"]
        frozen = other if holder == "faults-box-2" else faults.procs[-2]
        attempt1 = training_processes(run_dir(faults, rid))
        assert attempt1
        os.killpg(frozen.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        overlap = []
        with faults.client() as c:
            while alive(attempt1) and time.monotonic() - t0 < 60:
                r = c.get(f"/api/runs/{rid}").json()
                if r["attempt"] == 2 and r["status"] in ("starting", "running"):
                    overlap.append(round(time.monotonic() - t0, 1))
                time.sleep(0.1)
        fenced = time.monotonic() - t0
        assert not alive(attempt1), "the ranks of the frozen worker kept training"
        assert not overlap, f"attempt 2 started while attempt 1 still ran (at {overlap} s)"
        second = wait_for(
            faults,
            rid,
            lambda r: r["attempt"] == 2 and r["status"] == "running",
            LOST_SECONDS + 60,
            "attempt 2 running on the other worker",
        )
        moved = time.monotonic() - t0
        print(
            f"frozen worker: ranks fenced after {fenced:.1f}s, attempt 2 running after {moved:.1f}s"
        )
        # Attempt 1 was gone before another attempt could start, so it wrote nothing after.
        assert second["worker"] != holder, second
        final = wait_final(faults, rid, timeout=240)
        assert final["status"] == "succeeded" and final["attempt"] == 2, final
        assert final["attempt_log"][0]["reason"].startswith("worker lost"), final["attempt_log"]
    finally:
        if frozen is not None:
            os.killpg(frozen.pid, signal.SIGCONT)
        os.killpg(other.pid, signal.SIGTERM)
        other.wait(timeout=60)
