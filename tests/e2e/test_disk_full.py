"""A full disk under the database, on a real panel: the database lives on a small tmpfs that the
test fills while a run trains (real API, real worker, real torchrun on the tiny model).

Promised (docs/reliability.md): ``/api/health`` says ``degraded`` with the reason, ``POST
/api/runs`` answers 507 with a message instead of a bare 500, the worker stops the training it
can no longer report (a checkpoint first), and once the disk has room again the run ends
``failed`` with that real reason — not "worker lost", not restarted, not left ``running``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.e2e import (
    alive,
    get_run,
    run_dir,
    submit,
    tiny_config,
    training_processes,
    wait_final,
    wait_for,
    worker_log_tail,
)
from tests.support.panel import Panel, start_panel

pytestmark = pytest.mark.slow
UNRECORDED = 5


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own (needs root, as make test's machine has)."""
    mnt = tmp_path / "dbdisk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the disk refuses another byte."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 512, 1):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return filler


def health(panel: Panel) -> tuple[int, dict[str, Any]]:
    r = httpx.get(panel.url + "/api/health", timeout=10)
    return r.status_code, dict(r.json())


def test_disk_full_degrades_health_and_ends_the_run_with_its_reason(
    tmp_path: Path, small_disk: Path, tiny_assets: dict[str, Any]
) -> None:
    panel = start_panel(
        tmp_path / "data",
        broker_url=None,
        allowed_roots=[tiny_assets["root"]],
        extra_env={
            "CPT_DATABASE_URL": f"sqlite:///{small_disk / 'cpt-panel.db'}",
            "CPT_UNRECORDED_SECONDS": str(UNRECORDED),
            # Short, so that misjudging the unrecorded silence as a lost worker would show.
            "CPT_WORKER_LOST_SECONDS": "4",
        },
    )
    try:
        panel.start_worker(concurrency=1)
        config = tiny_config(tiny_assets, max_steps=100000, save_steps=100000)
        rid = submit(panel, config, "disk full")["id"]
        wait_for(panel, rid, lambda r: (r["step"] or 0) >= 3, 180, "past step 3")
        assert health(panel) == (200, health(panel)[1]) and health(panel)[1]["database"] == "ok"
        procs = training_processes(run_dir(panel, rid))
        assert procs

        t0 = time.monotonic()
        filler = fill(small_disk)
        # The run's own shipments soon need space the disk no longer has.
        seen: dict[str, Any] = {}
        while time.monotonic() - t0 < 120:
            code, seen = health(panel)
            if code == 503 and seen["database"].startswith("database write failed"):
                break
            time.sleep(0.2)
        degraded = time.monotonic() - t0
        assert seen["status"] == "degraded" and "disk full" in seen["database"], seen

        with panel.client() as c:
            r = c.post(
                "/api/runs", json={"name": "no room", "preset": "tiny-demo", "config": config}
            )
        assert r.status_code == 507, r.text
        assert "disk full" in r.json()["detail"] and "nothing was saved" in r.json()["detail"]

        # The worker cannot report: it stops the training instead of letting it run unseen.
        while alive(procs) and time.monotonic() - t0 < degraded + UNRECORDED + 90:
            time.sleep(0.2)
        stopped = time.monotonic() - t0
        assert not alive(procs), "the training kept running while nothing could be recorded"
        assert get_run(panel, rid)["status"] == "running"  # the API could not be told yet

        filler.unlink()
        t1 = time.monotonic()
        final = wait_final(panel, rid, timeout=120)
        ended = time.monotonic() - t1
        code, after = health(panel)
        print(
            f"disk full: health degraded after {degraded:.1f}s, training stopped after "
            f"{stopped:.1f}s; disk freed: run {final['status']} {ended:.1f}s later: "
            f"{final['status_reason']}"
        )
        assert final["status"] == "failed" and final["attempt"] == 1, final
        reason = final["status_reason"]
        assert reason.startswith("stopped: the API could not record this run"), reason
        assert "disk full" in reason and "checkpoint-" in reason, reason
        assert [e["reason"] for e in final["attempt_log"]] == [reason]
        # Health recovers once writes get through again (after its short hold).
        deadline = time.monotonic() + 30
        while code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            code, after = health(panel)
        assert (code, after["status"]) == (200, "ok"), after
    except AssertionError:
        print(worker_log_tail(panel))
        raise
    finally:
        panel.stop()
