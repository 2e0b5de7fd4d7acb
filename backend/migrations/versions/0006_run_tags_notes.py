"""runs: tags, a free-text note and the metrics summary (last/best per metric)

Revision ID: 0006_run_tags_notes
Revises: 0003_slurm
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_run_tags_notes"
down_revision: str | None = "0003_slurm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("metrics_summary", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("metrics_summary")
        batch.drop_column("note")
        batch.drop_column("tags")
