"""The metrics store against the previous release's query (which read every event): the same
series, a downsampled read that keeps first, last, min and max, and the migration that moves a
previous release's database over (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
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
from backend.services import ingest
from backend.services.metrics import levels, segments
from backend.services.metrics.read import read as metric_read
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
                metric_read(conn, run_id, *args))  # fmt: skip

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
            # From the levels, with buckets cut by the range at both ends.
            (20, 1234, 5678),
            (12, 777, None),
        ):
            got = metric_read(conn, run_id, [key], lo, hi, mp, None)["series"][key]
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


#: The levels the release before every-k levels kept.
EVEN_LEVELS = (8, 10, 12, 14, 16, 18, 20)


@pytest.mark.parametrize(
    "previous", ["0007_metric_segments", "0006_run_tags_notes", "0004_reliability"]
)
def test_migration_moves_a_previous_release_database(
    db_url: str, tmp_path: Path, previous: str
) -> None:
    """A database made by the previous release (segments, a level every other k), the one
    before it (one row per point) or an older one (events only) upgraded in place; then down to
    one row per point and up again."""
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
    assert ScriptDirectory.from_config(cfg).get_revision(previous) is not None
    # 0007's store is filled by its own replay of the events below, folded into the levels
    # that release kept.
    made_by = "0006_run_tags_notes" if previous == "0007_metric_segments" else previous
    command.upgrade(cfg, made_by)
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
                if previous == "0006_run_tags_notes":
                    # What that release's per-point store held (here: a stale value that the
                    # upgrade must not carry over, since it rebuilds the store from events).
                    sid = conn.execute(sa.text("INSERT INTO metric_series (run_id, key) VALUES "
                                               "(:r, 'loss') RETURNING id"), {"r": rid}).scalar()  # fmt: skip
                    conn.execute(sa.text("INSERT INTO metric_points (series_id, attempt, step, "
                                         "value) VALUES (:s, 1, 1, 999.0)"), {"s": sid})  # fmt: skip
        if previous == "0007_metric_segments":
            command.upgrade(cfg, previous)  # its frozen write path folds that release's levels
            with engine.connect() as conn:
                held = conn.execute(sa.text("SELECT DISTINCT level FROM metric_levels")).all()
                assert sorted(k for (k,) in held) == list(EVEN_LEVELS)
        with engine.connect() as conn:
            before = {rid: legacy_metrics.metric_series(conn, rid, None, None, None, FULL, None)
                      for rid in ids}  # fmt: skip
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            held = conn.execute(sa.text("SELECT DISTINCT level FROM metric_levels")).all()
            assert sorted(k for (k,) in held) == list(levels.LEVELS)
        with engine.connect() as conn:
            for rid in ids:
                assert metric_read(conn, rid, None, None, None, FULL, None) == before[rid]
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
            after = metric_read(session.connection(), ids[0], None, None, None, FULL, None)
        assert 999.0 not in after["series"]["loss"]["value"]
        # Down to one row per point (every point unpacked), and up again: the same answers.
        command.downgrade(cfg, "0006_run_tags_notes")
        with engine.connect() as conn:
            n = conn.execute(sa.text("SELECT count(*) FROM metric_points")).scalar()
            level_20 = conn.execute(sa.text("SELECT sum(n) FROM metric_levels WHERE level = 20"))
            assert n == level_20.scalar() and n > 20_000
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got = metric_read(conn, ids[0], None, None, None, FULL, None)
            assert got == after
    finally:
        engine.dispose()
        if not db_url.startswith("sqlite"):
            from backend.core import db

            db._engine_for.cache_clear()
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_out_of_order_and_repeated_steps(db_url: str, tmp_path: Path) -> None:
    """Batches that arrive in any step order, and steps shipped again later with other values
    (a log and an eval at one step, a script that re-logs): each step keeps its first value, the
    segments never overlap and the levels count every point once."""
    s = Settings(data_dir=tmp_path / "d", database_url=db_url, _env_file=None)  # type: ignore[call-arg]
    init_db(s)
    rng = random.Random(7)
    chunks = [list(range(lo, lo + 100)) for lo in range(1, 3001, 100)]
    rng.shuffle(chunks)
    chunks.append(list(range(10, 61)))  # all repeats: nothing to write
    chunks.append(list(range(2950, 3101)))  # repeats and new steps past the end
    chunks.append([5000, 4000, 3500])  # one batch, steps backwards
    first: dict[int, tuple[float, float]] = {}
    seq = 0
    with Session(get_engine(s), expire_on_commit=False) as session:
        run = Run(id="r-" + uuid.uuid4().hex[:6], name="t", config={}, output_dir="/x")
        session.add(run)
        session.commit()
        for steps in chunks:
            batch = []
            for step in steps:
                seq += 1
                loss = rng.random() * 10
                batch.append({"seq": seq, "kind": "log", "step": step, "loss": loss,
                              "time": 1.7e9 + seq})  # fmt: skip
                first.setdefault(step, (loss, 1.7e9 + seq))
            ingest.store_events(session, run, 1, batch)
            session.commit()
        conn = session.connection()
        want = sorted(first)
        got = metric_read(conn, run.id, ["loss"], None, None, FULL, None)["series"]["loss"]
        assert got["step"] == want
        assert got["value"] == [first[x][0] for x in want]
        assert got["time"] == [first[x][1] for x in want]
        mine = "series_id IN (SELECT id FROM metric_series WHERE run_id = :r)"
        segs = conn.execute(sa.text(f"SELECT first_step, last_step, n FROM metric_segments "
                                    f"WHERE {mine} ORDER BY first_step"), {"r": run.id}).all()  # fmt: skip
        assert sum(n for _, _, n in segs) == len(want)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(segs))  # no overlap
        assert all(n <= segments.SEGMENT_POINTS for _, _, n in segs)
        top = conn.execute(
            sa.text(f"SELECT sum(n) FROM metric_levels WHERE level = 20 AND {mine}"), {"r": run.id}
        ).scalar()
        assert top == len(want)
        full = {"step": want, "value": got["value"], "time": got["time"],
                "tokens_seen": got["tokens_seen"]}  # fmt: skip
        for mp, lo, hi in ((100, None, None), (60, 700, 2900), (20, 3000, None)):
            part = metric_read(conn, run.id, ["loss"], lo, hi, mp, None)["series"]["loss"]
            _check_downsampled(full, part, mp, lo, hi)


@pytest.mark.parametrize(
    ("spacing", "max_points"),
    [
        # A long dense run: a level with a quarter to a half of max_points buckets, each
        # bucket's min and max kept as they are.
        (1, 600),
        # Steps so far apart that even the widest level has more buckets than max_points / 2:
        # buckets are grouped.
        (40_000, 40),
    ],
)
def test_a_long_run_reads_a_few_level_rows(
    db_url: str, tmp_path: Path, spacing: int, max_points: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The downsampled chart of a long run reads at most max_points / 2 rows of one level (plus
    the widest level's few) and answers between half and all of max_points, extremes kept."""
    s = Settings(data_dir=tmp_path / "d", database_url=db_url, _env_file=None)  # type: ignore[call-arg]
    init_db(s)
    rng = random.Random(3)
    steps = [1 + i * spacing for i in range(100_000 if spacing == 1 else 3_000)]
    values = [5.0 / (1 + i / 500) + rng.random() * 0.05 for i in range(len(steps))]
    values[len(values) // 3] = 40.0  # a spike
    values[2 * len(values) // 3] = -1.0  # a dip
    with Session(get_engine(s), expire_on_commit=False) as session:
        run = Run(id="r-" + uuid.uuid4().hex[:6], name="t", config={}, output_dir="/x")
        session.add(run)
        session.commit()
        for i in range(0, len(steps), 1000):
            batch = [{"seq": j + 1, "kind": "log", "step": steps[j], "loss": values[j],
                      "time": 1.7e9 + j} for j in range(i, min(i + 1000, len(steps)))]  # fmt: skip
            ingest.store_events(session, run, 1, batch)
        session.commit()
        conn = session.connection()
        seen: list[str] = []
        real = levels.query

        def counting(c: sa.Connection, sql: str, params: Any) -> list[Any]:
            rows = real(c, sql, params)
            if "FROM metric_levels" in sql:
                seen.append(f"{params[2]}:{len(rows)}")
            return rows

        monkeypatch.setattr(levels, "query", counting)  # the level reads
        got = metric_read(conn, run.id, ["loss"], None, None, max_points, None)
        monkeypatch.undo()
        loss = got["series"]["loss"]
        full = {"step": steps, "value": values, "time": [1.7e9 + j for j in range(len(steps))],
                "tokens_seen": [None] * len(steps)}  # fmt: skip
        _check_downsampled(full, loss, max_points)
        assert len(loss["step"]) >= max_points // 2
        # The widest level first (the run's extent), then one level's rows, at most half.
        (top, chosen) = seen
        assert top.startswith(f"{levels.TOP}:")
        level, rows = (int(x) for x in chosen.split(":"))
        if spacing == 1:
            assert level < levels.TOP and max_points // 4 < rows <= max_points // 2
        else:
            assert level == levels.TOP and rows > max_points // 2


def test_no_migration_imports_live_service_code() -> None:
    """A migration does tomorrow what it did the day it was written: it may use its frozen
    helpers (``backend/migrations/frozen/``), never the services or models that move on."""
    import ast

    versions = Path(__file__).resolve().parents[2] / "backend" / "migrations"
    for path in sorted([*versions.glob("versions/*.py"), *versions.glob("frozen/*.py")]):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("backend.services", "backend.api", "backend.models")), (
                    f"{path.name} imports {name}"
                )
