"""Lost broker messages are resent: the database, not Redis, is the source of truth.

Uses its own redis-server on a free port (FLUSHALL must never touch the Redis other test
sessions share).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.e2e import get_run, submit, tiny_config, wait_final
from tests.support.panel import free_port, start_panel

pytestmark = pytest.mark.slow
RESEND_SECONDS = 5


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is needed (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def messages(client: redis.Redis) -> int:
    """Celery messages waiting in the broker (each queue is a Redis list)."""
    return sum(client.llen(k) for k in client.scan_iter() if client.type(k) == b"list")


def test_flushed_broker_messages_are_resent(
    tmp_path: Path, own_redis: str, tiny_assets: dict[str, Any]
) -> None:
    """3 runs queued with no worker: one message each, not one more per ``CPT_RESEND_SECONDS``.
    Redis flushed, a worker started: the recovery loop resends each unclaimed message after
    ``CPT_RESEND_SECONDS``, all 3 are claimed within that plus a margin of the worker's start
    and all 3 succeed; meanwhile each says why it waits."""
    panel = start_panel(
        tmp_path / "data",
        broker_url=own_redis,
        allowed_roots=[tiny_assets["root"]],
        extra_env={"CPT_RESEND_SECONDS": str(RESEND_SECONDS), "CPT_WORKER_LOST_SECONDS": "4"},
    )
    try:
        ids = [
            submit(panel, tiny_config(tiny_assets, max_steps=2, save_steps=10), f"resend {i}")["id"]
            for i in range(3)
        ]
        waiting = get_run(panel, ids[2])
        assert waiting["waiting_reason"].startswith("waiting for a worker on queue"), waiting
        assert "position 3" in waiting["waiting_reason"], waiting
        client = redis.Redis.from_url(own_redis)
        # No worker on the queue: each message waits in the broker, and is not sent again
        # every CPT_RESEND_SECONDS (13 piled up for 3 runs in 4.5 minutes before).
        time.sleep(2 * RESEND_SECONDS + 3)
        assert messages(client) == 3, messages(client)
        client.flushall()
        t0 = time.monotonic()
        # One slot per run: what is measured is the resend, not three runs one after another.
        panel.start_worker(concurrency=3)
        worker_up = time.monotonic() - t0
        claimed = None
        while time.monotonic() - t0 < worker_up + RESEND_SECONDS + 60:
            if all(get_run(panel, rid)["status"] != "queued" for rid in ids):
                claimed = time.monotonic() - t0
                break
            time.sleep(0.2)
        finals = [wait_final(panel, rid, timeout=240) for rid in ids]
        took = time.monotonic() - t0
        print(
            f"FLUSHALL with 3 queued: worker up after {worker_up:.1f}s, all 3 claimed after "
            f"{claimed or float('nan'):.1f}s, all 3 done after {took:.1f}s "
            f"(CPT_RESEND_SECONDS={RESEND_SECONDS})"
        )
        assert claimed is not None, [get_run(panel, rid) for rid in ids]
        assert claimed < worker_up + RESEND_SECONDS + 30
        assert [f["status"] for f in finals] == ["succeeded"] * 3, finals
    finally:
        panel.stop()
