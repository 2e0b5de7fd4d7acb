"""Plain DB-API statements on a SQLAlchemy connection, for the hot paths.

Per statement, SQLAlchemy's statement building and ``Row`` objects cost more than SQLite's own
work at the sizes ingest and chart reads run (a batch's series ids, a level's rows): these go
through the driver's cursor with ``%s`` placeholders (rewritten to ``?`` for SQLite). The
metrics store and ingest share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: Connection, table: Any) -> Any:
    """``INSERT`` with the dialect's ``ON CONFLICT`` (SQLite and PostgreSQL both have one)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def _sql(conn: Connection, sql: str) -> str:
    return sql.replace("%s", "?") if conn.dialect.name == "sqlite" else sql


def query(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """The rows of one read."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(_sql(conn, sql), params)
        return list(cur.fetchall())
    finally:
        cur.close()


def execute(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    """One write; returns the rows it changed."""
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(_sql(conn, sql), params)
        return int(cur.rowcount)
    finally:
        cur.close()


def executemany(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement for many rows (nothing sent when there are none)."""
    if not rows:
        return
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.executemany(_sql(conn, sql), rows)
    finally:
        cur.close()
