"""The metrics store against the previous release's query (which read every event): the same
series, a downsampled read that keeps first, last, min and max, and the migration that moves a
previous release's database over (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlmodel import Session

from backend.core.db import alembic_config, get_engine, init_db
from backend.models import Run
from backend.services import ingest, metric_store
from cpt_contract.settings import Settings
from tests.api import legacy_metrics
from tests.api.test_db import pg_url  # noqa: F401  (fixture)

FULL = 100_000


def _events(n1: int, resume_at: int, n2: int, seed: int = 1) -> list[tuple[int, dict[str, Any]]]:
    """(attempt, event): attempt 1 logs steps 1..n1, attempt 2 resumes at ``resume_at``."""
    rng = random.Random(seed)
    out: list[tuple[int, dict[str, Any]]] = []
    seq = 0

    def add(attempt: int, **e: Any) -> None:
        nonlocal seq
        seq += 1
        out.append((attempt, {"seq": seq, "time": 1.7e9 + seq, **e}))

    for attempt, lo, hi in ((1, 0, n1), (2, resume_at, n2)):
        add(attempt, kind="start", step=lo, max_steps=n2)
        for step in range(lo + 1, hi + 1):
            loss = 5.0 / (1 + step / 300) + rng.random() * 0.1
            if rng.random() < 0.002:
                loss *= 8  # a spike the downsampled chart must keep
            add(attempt, kind="log", step=step, loss=loss, learning_rate=2e-4 * rng.random(),
                grad_norm=rng.random(), tokens_seen=512 * step, note="text is no metric")  # fmt: skip
            if step % 97 == 0:
                add(attempt, kind="eval", step=step, eval_loss=3 + rng.random(), perplexity=20.0)
            if step % 500 == 0:
                add(attempt, kind="log", step=step, loss=float("nan"))  # NaN: no point
        add(
            attempt, kind="checkpoint", step=hi, name=f"checkpoint-{hi}", path=f"/x/checkpoint-{hi}"
        )
    return out


def _check_downsampled(full: dict[str, list[Any]], got: dict[str, list[Any]], max_points: int,
                       lo: int | None = None, hi: int | None = None) -> None:  # fmt: skip
    idx = [
        i for i, s in enumerate(full["step"]) if (lo is None or s >= lo) and (hi is None or s <= hi)
    ]
    steps = [full["step"][i] for i in idx]
    values = [full["value"][i] for i in idx]
    assert 2 <= len(got["step"]) <= max_points
    assert got["step"] == sorted(got["step"])
    assert got["step"][0] == steps[0] and got["step"][-1] == steps[-1]
    # Every point shown is a real point, whole (value, tokens, time), at its step.
    at = {full["step"][i]: i for i in idx}
    for j, s in enumerate(got["step"]):
        assert s in at
        for name in ("value", "tokens_seen", "time"):
            assert got[name][j] == full[name][at[s]]
    assert min(values) in got["value"] and max(values) in got["value"]  # spikes survive
    assert len(got["step"]) >= min(len(steps), max_points // 4)


def _compare(conn: sa.Connection, run_id: str) -> None:
    def both(*args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return (legacy_metrics.metric_series(conn, run_id, *args),
                metric_store.read(conn, run_id, *args))  # fmt: skip

    old, new = both(None, None, None, FULL, None)
    assert new == old and set(new["keys"]) == {"loss", "learning_rate", "grad_norm", "tokens_seen",
                                               "eval_loss", "perplexity", "max_steps"} - {"max_steps"}  # fmt: skip
    for args in ((["loss", "eval_loss"], 100, 900, FULL, None), (["loss"], None, None, FULL, 1),
                 (["grad_norm"], None, None, FULL, 2)):  # fmt: skip
        old, new = both(*args)
        assert new == old, args
    full = old_full = legacy_metrics.metric_series(conn, run_id, None, None, None, FULL, None)
    for key in ("loss", "learning_rate", "tokens_seen", "eval_loss"):
        for mp, lo, hi in (
            (200, None, None),
            (1000, None, None),
            (150, 1234, 4567),
            (60, 3001, 3300),
            (10, None, None),
        ):
            got = metric_store.read(conn, run_id, [key], lo, hi, mp, None)["series"][key]
            _check_downsampled(full["series"][key], got, mp, lo, hi)
    assert old_full["keys"] == full["keys"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'panel.db'}"


def test_ingest_writes_the_same_series_as_the_events(db_url: str, tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d", database_url=db_url, _env_file=None)  # type: ignore[call-arg]
    init_db(s)
    events = _events(4000, 3000, 6000)
    with Session(get_engine(s), expire_on_commit=False) as session:
        run = Run(id="r-" + uuid.uuid4().hex[:6], name="t", config={}, output_dir="/x")
        session.add(run)
        session.commit()
        for attempt in (1, 2):
            run.attempt = attempt
            mine = [e for a, e in events if a == attempt]
            for i in range(0, len(mine), 200):
                ingest.store_events(session, run, attempt, mine[i : i + 200])
                ingest.store_events(session, run, attempt, mine[i : i + 10])  # a resend: no-op
            session.commit()
        _compare(session.connection(), run.id)


def test_migration_moves_a_previous_release_database(db_url: str, tmp_path: Path) -> None:
    """A database made by the previous release (the revision before the store's, events only)
    upgraded in place."""
    if db_url.startswith("sqlite"):
        url = db_url
    else:
        url = db_url + "_mig"
        import psycopg

        from tests.api.test_db import PG_ADMIN

        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
    s = Settings(data_dir=tmp_path / "d", database_url=url, _env_file=None)  # type: ignore[call-arg]
    cfg = alembic_config(s.sqlalchemy_url)
    previous = ScriptDirectory.from_config(cfg).get_revision("0005_metric_store").down_revision
    assert isinstance(previous, str)
    command.upgrade(cfg, previous)
    engine = get_engine(s)
    runs = sa.table("runs", *(sa.column(c) for c in ("id", "name", "status", "method", "model",
                    "queue", "attempt", "output_dir", "created_at")), sa.column("config", sa.JSON))  # fmt: skip
    ev = sa.table("run_events", *(sa.column(c) for c in ("run_id", "attempt", "seq", "kind", "step",
                  "time")), sa.column("data", sa.JSON))  # fmt: skip
    ids = ["r-mig-a", "r-mig-b"]
    try:
        with engine.begin() as conn:
            for n, rid in enumerate(ids):
                conn.execute(runs.insert().values(
                    id=rid, name="old", status="succeeded", method="lora", model="m", queue="gpu",
                    attempt=2, output_dir="/x", created_at=sa.func.now(), config={}))  # fmt: skip
                rows = [{"run_id": rid, "attempt": a, "seq": e["seq"], "kind": e["kind"],
                         "step": e.get("step"), "time": e["time"],
                         "data": {k: ("NaN" if v != v else v) for k, v in e.items()}}
                        for a, e in _events(3000 + 500 * n, 2000, 4200, seed=n)]  # fmt: skip
                conn.execute(ev.insert(), rows)
        with engine.connect() as conn:
            before = {rid: legacy_metrics.metric_series(conn, rid, None, None, None, FULL, None)
                      for rid in ids}  # fmt: skip
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            for rid in ids:
                assert metric_store.read(conn, rid, None, None, None, FULL, None) == before[rid]
                _compare(conn, rid)
        # Ingest carries on where the moved history ends.
        with Session(engine, expire_on_commit=False) as session:
            run = session.get(Run, ids[0])
            assert run is not None
            more = [{"seq": 100_000 + i, "kind": "log", "step": 4200 + i, "loss": 0.5,
                     "tokens_seen": 512 * (4200 + i), "time": 1.8e9} for i in range(1, 301)]  # fmt: skip
            ingest.store_events(session, run, 2, more)
            session.commit()
            _compare(session.connection(), ids[0])
    finally:
        engine.dispose()
        if not db_url.startswith("sqlite"):
            from backend.core import db

            db._engine_for.cache_clear()
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
