"""runs: tags, a free-text note, the metrics summary (last/best per metric), the phase, the
first start and summed duration of the attempts, measured eval/save seconds, argv per attempt

Revision ID: 0006_run_tags_notes
Revises: 0005_metric_store
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_run_tags_notes"
down_revision: str | None = "0005_metric_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("metrics_summary", sa.JSON(), nullable=False, server_default="{}")
        )
        batch.add_column(sa.Column("phase", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("phase_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("first_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("attempts_seconds", sa.Float(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("eval_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("save_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("attempt_argv", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in (
            "attempt_argv",
            "save_seconds",
            "eval_seconds",
            "attempts_seconds",
            "first_started_at",
            "phase_since",
            "phase",
        ):
            batch.drop_column(name)
        batch.drop_column("metrics_summary")
        batch.drop_column("note")
        batch.drop_column("tags")
