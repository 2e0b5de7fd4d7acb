"""Database write failures, in process: what counts as a full disk, how long health stays
degraded, and that the recovery loop judges no worker lost while the database could not
record it (the disk-full fault itself, on a real tmpfs: tests/e2e/test_disk_full.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from backend.core import dbhealth
from backend.core.db import init_db
from backend.services.recovery import fail_lost_runs
from cpt_contract.settings import Settings
from tests.support.records import silent_running_run


class _PgDiskFull(Exception):
    sqlstate = "53100"


def _wrapped(orig: Exception) -> OperationalError:
    return OperationalError("INSERT ...", {}, orig)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    dbhealth.reset()
    yield
    dbhealth.reset()


def test_what_counts_as_a_full_disk() -> None:
    full = _wrapped(sqlite3.OperationalError("database or disk is full"))
    assert dbhealth.is_storage_error(full) and dbhealth.is_write_failure(full)
    assert dbhealth.is_storage_error(_wrapped(_PgDiskFull("could not extend file")))
    assert dbhealth.is_storage_error(OSError(28, "No space left on device"))
    readonly = _wrapped(sqlite3.OperationalError("attempt to write a readonly database"))
    assert dbhealth.is_write_failure(readonly) and not dbhealth.is_storage_error(readonly)
    locked = _wrapped(sqlite3.OperationalError("database is locked"))
    assert not dbhealth.is_write_failure(locked)  # contention, not an unwritable database
    assert dbhealth.describe(full) == "disk full (database or disk is full)"


def test_health_stays_degraded_until_a_write_gets_through_after_the_hold() -> None:
    assert dbhealth.problem() is None
    dbhealth.record_failure(_wrapped(sqlite3.OperationalError("database or disk is full")))
    failed = dbhealth._state.failed_at
    assert failed is not None
    assert (
        dbhealth.problem(failed + 1)
        == "database write failed 1 s ago: disk full (database or disk is full)"
    )
    dbhealth.record_write()  # one small write got through: not yet a disk with room
    assert dbhealth.problem(failed + 2) is not None
    assert dbhealth.problem(failed + dbhealth.HOLD_SECONDS + 1) is None
    assert dbhealth.failed_within(5, failed + 4) and not dbhealth.failed_within(5, failed + 6)


def test_no_worker_is_judged_lost_while_writes_fail(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_lost_seconds=2)
    init_db(settings)
    silent_running_run(settings, "r-dbhealth1", tmp_path / "out")
    dbhealth.record_failure(_wrapped(sqlite3.OperationalError("database or disk is full")))
    assert fail_lost_runs(settings) == []  # silence the database could not record
    dbhealth.reset()
    assert fail_lost_runs(settings) == ["r-dbhealth1"]


def test_writes_are_refused_up_front_while_the_database_volume_is_nearly_full(
    tmp_path: Path,
) -> None:
    """Found: health said ``degraded`` (the volume nearly full) and ``POST /api/runs`` still
    answered 201. On a real 8 MiB tmpfs holding the SQLite file, filled to under 1 MiB free:
    every user write is a 507 before its route runs, reads and previews still answer, and
    the first write after the disk has room again is taken."""
    import contextlib
    import os
    import subprocess

    from fastapi.testclient import TestClient

    from backend.api.deps import app_settings
    from backend.main import create_app
    from cpt_contract.settings import Settings
    from tests.support.api import make_demo

    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], check=True)
    try:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=f"sqlite:///{disk / 'cpt-panel.db'}",
            api_token="writes-token-0123456789",
            worker_token="writes-worker-0123456789",
            build_demo=False,
        )
        make_demo(settings.resolved_data_dir)
        app = create_app(settings)
        app.dependency_overrides[app_settings] = lambda: settings
        auth = {"Authorization": "Bearer writes-token-0123456789"}
        with TestClient(app, headers=auth) as c:
            assert c.post("/api/runs", json={"preset": "tiny-demo"}).status_code == 201
            filler = disk / "filler"
            with open(filler, "wb") as fh:  # leave ~512 KiB
                fh.write(
                    b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 512 * 1024)
                )
            assert c.get("/api/health").status_code == 503
            before = c.get("/api/runs").json()["total"]
            r = c.post("/api/runs", json={"preset": "tiny-demo"})
            assert r.status_code == 507, r.text
            assert "nothing was saved" in r.json()["detail"] and "disk full" in r.json()["detail"]
            assert c.delete("/api/runs/r-nope").status_code == 507
            assert c.post("/api/runs/preview", json={"preset": "tiny-demo"}).status_code == 200
            assert c.get("/api/runs").json()["total"] == before
            filler.unlink()
            assert c.post("/api/runs", json={"preset": "tiny-demo"}).status_code == 201
    finally:
        with contextlib.suppress(Exception):
            app.dependency_overrides.clear()
        subprocess.run(["umount", "-l", str(disk)], check=False)
