"""experiments: a base config + axes expanded into runs; runs point back to theirs, with their
axis values and the reason the server asked them to stop (early stopping)

Revision ID: 0013_experiments
Revises: 0012_secrets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_experiments"
down_revision: str | None = "0012_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Columns are added in place (no batch copy of ``runs``: with foreign keys on, SQLite's copy
# would cascade-delete every row that refers to a run).
def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rungs", sa.JSON(), nullable=False),
    )
    op.add_column("runs", sa.Column("experiment_id", sa.String(length=32), nullable=True))
    op.add_column("runs", sa.Column("experiment_values", sa.JSON(), nullable=True))
    op.add_column("runs", sa.Column("stop_reason", sa.String(length=2000), nullable=True))
    op.create_index("ix_runs_experiment_id", "runs", ["experiment_id"])


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_id", table_name="runs")
    op.drop_column("runs", "stop_reason")
    op.drop_column("runs", "experiment_values")
    op.drop_column("runs", "experiment_id")
    op.drop_table("experiments")
