"""metric store: per-key columnar segments instead of one row per point; the levels keep the
extremes' time and tokens; every run's metrics rebuilt from its events

Revision ID: 0007_metric_segments
Revises: 0006_run_tags_notes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_metric_segments"
down_revision: str | None = "0006_run_tags_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Events read per round trip while moving a run's metrics (bounded memory on any run length).
_CHUNK = 5000
_EXTREMES = ("min_time", "min_tokens", "max_time", "max_tokens")


def upgrade() -> None:
    op.create_table(
        "metric_segments",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("vals", sa.LargeBinary(), nullable=False),
        sa.Column("times", sa.LargeBinary(), nullable=False),
        sa.Column("tokens", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_id", "attempt", "first_step"),
    )
    for name in _EXTREMES:
        op.add_column("metric_levels", sa.Column(name, sa.Float(), nullable=True))
    op.drop_table("metric_points")
    conn = op.get_bind()
    # The store is derived data: rebuilt from the events (the record), whatever the previous
    # release wrote, so moved runs are exactly what ingest writes today.
    for table in ("metric_levels", "metric_attempts", "metric_series"):
        conn.execute(sa.text(f"DELETE FROM {table}"))
    _replay_events(conn)


#: The levels this release kept (a level every other k; 0008 adds the others).
_LEVELS = (8, 10, 12, 14, 16, 18, 20)


def _replay_events(conn: sa.Connection) -> None:
    """Every run's stored events through the store's write path as it was (frozen)."""
    from backend.migrations.frozen import metric_store_0008 as metric_store

    events = sa.table(
        "run_events",
        sa.column("run_id", sa.String),
        sa.column("attempt", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("step", sa.Integer),
        sa.column("time", sa.Float),
        sa.column("data", sa.JSON),
    )
    run_ids = [r for (r,) in conn.execute(sa.select(events.c.run_id).distinct())]
    kinds = (*metric_store.METRIC_KINDS, "start")
    for run_id in run_ids:
        carry: float | None = None
        after: tuple[int, int] = (-1, -(2**31))
        while True:
            # Keyset pagination on (attempt, seq): the unique key's index serves it.
            q = (
                sa.select(events.c.attempt, events.c.seq, events.c.kind, events.c.step,
                          events.c.time, events.c.data)
                .where(events.c.run_id == run_id, events.c.kind.in_(kinds),
                       sa.tuple_(events.c.attempt, events.c.seq) > after)
                .order_by(events.c.attempt, events.c.seq)
                .limit(_CHUNK)
            )  # fmt: skip
            rows = conn.execute(q).all()
            if not rows:
                break
            batch = [metric_store.Ev(r.attempt, r.kind, r.step, r.time, r.data) for r in rows]
            carry = metric_store.add_events(conn, run_id, batch, carry, _LEVELS)
            after = (rows[-1].attempt, rows[-1].seq)


def downgrade() -> None:
    """Back to one row per point: each segment unpacked into its points (levels stay valid)."""
    import sys
    from array import array

    op.create_table(
        "metric_points",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("time", sa.Float(), nullable=True),
        sa.Column("tokens_seen", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_id", "attempt", "step"),
        sqlite_with_rowid=False,
    )

    def unpack(code: str, blob: bytes) -> list[float]:
        arr = array(code)
        arr.frombytes(blob)
        if sys.byteorder != "little":
            arr.byteswap()
        return [None if x != x else x for x in arr]  # type: ignore[misc]  # NaN = none

    conn = op.get_bind()
    points = sa.table("metric_points", *(sa.column(c) for c in
                      ("series_id", "attempt", "step", "value", "time", "tokens_seen")))  # fmt: skip
    segs = conn.execute(sa.text("SELECT series_id, attempt, steps, vals, times, tokens "
                                "FROM metric_segments ORDER BY series_id, attempt, first_step")).all()  # fmt: skip
    for sid, att, steps, vals, times, tokens in segs:
        cols = (unpack("i", steps), unpack("d", vals), unpack("d", times), unpack("d", tokens))
        rows = [{"series_id": sid, "attempt": att, "step": s, "value": v, "time": t,
                 "tokens_seen": k} for s, v, t, k in zip(*cols, strict=True)]  # fmt: skip
        conn.execute(points.insert(), rows)
    op.drop_table("metric_segments")
    with op.batch_alter_table("metric_levels") as batch:
        for name in _EXTREMES:
            batch.drop_column(name)
