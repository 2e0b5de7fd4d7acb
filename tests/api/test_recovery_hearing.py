"""The recovery loop judges no worker lost right after the API itself stopped listening (its
event loop blocked or starved): the reports that broke the silence may still sit unread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.db import init_db
from backend.services.recovery import fail_lost_runs, hearing, recovery_loop
from cpt_contract.settings import Settings
from tests.support.records import silent_running_run


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    hearing.reset()
    yield
    hearing.reset()


def test_no_worker_is_judged_lost_for_a_window_after_a_stall(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_lost_seconds=2)
    init_db(settings)
    silent_running_run(settings, "r-hearing1", tmp_path / "out")
    stalled = time.monotonic()
    hearing.stalled(stalled)
    assert hearing.deaf_within(2, stalled + 1.9) and not hearing.deaf_within(2, stalled + 2.1)
    assert fail_lost_runs(settings) == []  # the API was not listening
    hearing.stalled(stalled - 3)  # the window has passed
    assert fail_lost_runs(settings) == ["r-hearing1"]


def test_the_loop_notices_that_it_was_blocked(tmp_path: Path) -> None:
    # A lost window of 8 s: a wake-up more than 2 s late is a stall (an idle loop on a busy
    # box is never that late; the test blocks it for 3 s).
    settings = Settings(data_dir=tmp_path, worker_lost_seconds=8)
    init_db(settings)

    async def scenario() -> tuple[bool, bool]:
        task = asyncio.create_task(recovery_loop(settings, 0.1))
        await asyncio.sleep(0.5)  # a few ordinary iterations: no stall
        before = hearing.deaf_within(8)
        time.sleep(3.0)  # blocks the event loop, as a starved API would be
        await asyncio.sleep(0.3)
        after = hearing.deaf_within(8)
        task.cancel()
        return before, after

    before, after = asyncio.run(scenario())
    assert not before and after
