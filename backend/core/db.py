"""Database engine and sessions.

SQLite (default, in the data dir) runs in WAL mode with a busy timeout and foreign keys on, so
the API's threads and the recovery loop can write concurrently. PostgreSQL works through
``CPT_DATABASE_URL``. The schema is owned by Alembic: ``init_db()`` runs ``upgrade head``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from backend.core import dbhealth
from cpt_contract.settings import Settings, get_settings

BACKEND_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = BACKEND_DIR / "alembic.ini"


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (psycopg2 is not installed)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # 32 MiB of page cache per connection (SQLite's default is 2 MiB): a long run's metrics
    # tables are B-trees of 10^6 rows, and ingest and chart reads walk their upper levels on
    # every batch; pages are only cached once read, so an idle connection stays small.
    cur.execute("PRAGMA cache_size=-32768")
    cur.close()


def _json_dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits): the standard library
        return json.dumps(value)


def _json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN literals written by an earlier json.dumps, big ints
        return json.loads(text)


#: JSON columns (a run's config and summary, loaded and saved on every ingest batch) through
#: orjson: several times faster than the standard library at both ends.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **_JSON
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **_JSON)
    dbhealth.watch(engine)  # a failed write (disk full) makes /api/health say so
    return engine


def sqlite_dir(settings: Settings) -> Path | None:
    """The directory of the SQLite file (None for PostgreSQL or an in-memory database)."""
    url = make_url(normalize_url(settings.sqlalchemy_url))
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().parent


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for((settings or get_settings()).sqlalchemy_url)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(BACKEND_DIR / "migrations"))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def init_db(settings: Settings | None = None) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    url = (settings or get_settings()).sqlalchemy_url
    command.upgrade(alembic_config(url), "head")


def get_session(settings: Settings | None = None) -> Iterator[Session]:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        session.info["settings"] = settings  # what session hooks read (notifications' link)
        yield session


# SQLite allows one writer; in WAL mode a transaction that read an older snapshot cannot
# upgrade to a writer (SQLITE_BUSY_SNAPSHOT, no waiting). The API is one process, so its
# read-modify-write work simply takes turns. PostgreSQL uses row locks instead (lock_run).
_sqlite_writer = threading.Lock()


@contextlib.contextmanager
def write_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session for read-modify-write work; the caller commits."""
    engine = get_engine(settings)
    lock = _sqlite_writer if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with lock, Session(engine, expire_on_commit=False) as session:
        session.info["settings"] = settings
        yield session
