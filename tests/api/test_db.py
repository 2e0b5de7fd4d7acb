"""The database layer on SQLite and on PostgreSQL: migrations, idempotent inserts, state machine."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session, func, select

from backend.core.db import get_engine, init_db
from backend.models import Checkpoint, LogChunk, Run, RunEvent
from backend.services import ingest, state_machine
from backend.services.state_machine import ALLOWED, IllegalTransition
from cpt_contract.settings import Settings
from cpt_contract.statuses import RunStatus

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("CPT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = {"runs", "run_events", "log_chunks", "checkpoints", "workers", "alembic_version"}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh database ``cpt_test_<uuid>`` on the local PostgreSQL, dropped at the end."""
    import psycopg

    name = f"cpt_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from backend.core import db

        db._engine_for.cache_clear()  # the cached engines point at the database we drop
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    s = Settings(data_dir=tmp_path / "data", database_url=url, _env_file=None)  # type: ignore[call-arg]
    init_db(s)
    return s


def _run(session: Session, run_id: str | None = None) -> Run:
    run = Run(id=run_id or "r-" + uuid.uuid4().hex[:6], name="t", config={}, output_dir="/x")
    session.add(run)
    session.commit()
    return run


def test_migrations_create_every_table(settings: Settings) -> None:
    engine = get_engine(settings)
    assert set(inspect(engine).get_table_names()) >= TABLES
    init_db(settings)  # idempotent: a second upgrade is a no-op
    from alembic.script import ScriptDirectory

    from backend.core.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.postgres
def test_alembic_command_line(tmp_path: Path, pg_url: str) -> None:
    """``python -m alembic -c backend/alembic.ini upgrade head`` works from the repo root."""
    for url in (None, pg_url + "_cli"):
        env = {**os.environ, "CPT_DATA_DIR": str(tmp_path / "cli")}
        env.pop("CPT_DATABASE_URL", None)
        if url:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
            env["CPT_DATABASE_URL"] = url
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "alembic", "-c", "backend/alembic.ini", "upgrade", "head"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert proc.returncode == 0, proc.stderr
            s = Settings(data_dir=tmp_path / "cli", database_url=url, _env_file=None)  # type: ignore[call-arg]
            assert set(inspect(get_engine(s)).get_table_names()) >= TABLES
        finally:
            if url:
                get_engine(s).dispose()
                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_event_and_log_inserts_are_idempotent(settings: Settings) -> None:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        run = _run(session)
        events = [
            {"seq": i, "kind": "log", "step": i, "time": 1.0 + i, "loss": 2.0, "nested": {"a": [1]}}
            for i in range(1, 6)
        ] + [
            {
                "seq": 6,
                "kind": "checkpoint",
                "step": 5,
                "path": "/x/checkpoint-5",
                "name": "checkpoint-5",
            }
        ]
        first = ingest.store_events(session, run, 1, events)
        second = ingest.store_events(session, run, 1, events)
        other_attempt = ingest.store_events(session, run, 2, events[:1])
        session.commit()
        until1, chunk1 = ingest.store_log(session, run, 1, 0, "abc\n")
        until2, chunk2 = ingest.store_log(session, run, 1, 0, "abc\n")
        until3, _ = ingest.store_log(session, run, 1, 2, "c\ndef\n")  # overlaps by 2 bytes
        session.commit()
        mine = RunEvent.run_id == run.id
        n_events = session.exec(select(func.count()).select_from(RunEvent).where(mine)).one()
        chunks = select(LogChunk).where(LogChunk.run_id == run.id).order_by(LogChunk.offset)
        texts = [c.text for c in session.exec(chunks)]
        stored = session.exec(
            select(RunEvent).where(mine, RunEvent.seq == 1, RunEvent.attempt == 1)
        ).one()
        ckpts = session.exec(select(Checkpoint).where(Checkpoint.run_id == run.id)).all()
    assert (len(first), len(second), len(other_attempt)) == (6, 0, 1)
    assert n_events == 7
    assert stored.data == events[0]  # the whole line, nested values included
    assert (until1, until2, until3) == (4, 4, 8) and chunk1 is not None and chunk2 is None
    assert texts == ["abc\n", "def\n"]
    assert [(c.name, c.step) for c in ckpts] == [("checkpoint-5", 5)]
    assert run.step == 5 and run.loss == 2.0


def test_non_finite_values_survive(settings: Settings) -> None:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        run = _run(session)
        ingest.store_events(
            session, run, 1, [{"seq": 1, "kind": "log", "step": 1, "loss": float("nan")}]
        )
        session.commit()
        stored = session.exec(select(RunEvent).where(RunEvent.run_id == run.id)).one()
    assert stored.data["loss"] == "NaN" and run.loss is None


@pytest.mark.parametrize("current", list(RunStatus))
def test_state_machine_transitions(settings: Settings, current: RunStatus) -> None:
    engine = get_engine(settings)
    for target in RunStatus:
        with Session(engine, expire_on_commit=False) as session:
            run = _run(session)
            run.status = current
            session.commit()
            if target in ALLOWED[current]:
                if target == RunStatus.queued:
                    state_machine.resume(run, "last")
                else:
                    state_machine.transition(run, target, "why")
                session.commit()
                session.expire_all()
                again = session.get(Run, run.id)
                assert again is not None and again.status == target
                if target == RunStatus.queued:
                    assert again.attempt == 2 and again.resume_from == "last"
            else:
                with pytest.raises(IllegalTransition):
                    state_machine.transition(run, target)


def test_transition_table_matches_the_contract() -> None:
    s = RunStatus
    # failed: a run whose model download failed before it could start (hub_models).
    assert ALLOWED[s.queued] == {s.starting, s.cancelled, s.failed}
    assert ALLOWED[s.cancelling] == {s.cancelled, s.failed, s.succeeded}
    for done in (s.succeeded, s.failed, s.cancelled):
        assert ALLOWED[done] == {s.queued}
    assert (
        str(IllegalTransition("succeeded", "cancelled")) == "cannot cancel a run that is succeeded"
    )


def test_metric_series_across_a_resume(settings: Settings) -> None:
    """Attempt 1 reached step 30, attempt 2 resumed from step 20: the chart shows 1..20, 22..28."""
    from backend.services import queries

    with Session(get_engine(settings), expire_on_commit=False) as session:
        run = _run(session)
        run.status = RunStatus.running
        first = [{"seq": 1, "kind": "start", "step": 0, "max_steps": 40}]
        first += [{"seq": 1 + i, "kind": "log", "step": 2 * i, "loss": 9.0} for i in range(1, 16)]
        ingest.store_events(session, run, 1, first)
        run.attempt = 2
        second = [{"seq": 100, "kind": "start", "step": 20, "max_steps": 40}]
        second += [
            {"seq": 100 + i, "kind": "log", "step": 20 + 2 * i, "loss": 1.0} for i in range(1, 5)
        ]
        ingest.store_events(session, run, 2, second)
        session.commit()
        merged = queries.metric_series(session, run, None, None, None, 1000, None)
        only_first = queries.metric_series(session, run, ["loss"], None, None, 1000, 1)
    assert merged["keys"] == ["loss"]  # start events are no metrics
    assert merged["series"]["loss"]["step"] == [*range(2, 21, 2), *range(22, 29, 2)]
    assert only_first["series"]["loss"]["step"] == list(range(2, 31, 2))
