"""metric store: narrow metric points, min/max/last levels, attempt starts; existing runs moved

Revision ID: 0005_metric_store
Revises: 0004_reliability
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005_metric_store"
down_revision: str | None = "0004_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString
#: Events read per round trip while moving a run's metrics (bounded memory on any run length).
_CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", _str(length=32), nullable=False),
        sa.Column("key", _str(length=200), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "key", name="uq_metric_series_run_key"),
    )
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
    op.create_table(
        "metric_levels",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=False),
        sa.Column("min_step", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_step", sa.Integer(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["metric_series.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("series_id", "attempt", "level", "bucket"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "metric_attempts",
        sa.Column("run_id", _str(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "attempt"),
    )
    _move_existing_metrics(op.get_bind())


def _move_existing_metrics(conn: sa.Connection) -> None:
    """Replay every run's stored events into the new tables, as ingest would have written them.

    Uses the store's own write path (the one ingest uses), so old and new runs are alike.
    """
    from backend.services import metric_store

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
            carry = metric_store.add_events(conn, run_id, batch, carry)
            after = (rows[-1].attempt, rows[-1].seq)


def downgrade() -> None:
    op.drop_table("metric_attempts")
    op.drop_table("metric_levels")
    op.drop_table("metric_points")
    op.drop_table("metric_series")
