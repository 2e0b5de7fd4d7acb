"""workers: executor (local|slurm) and the Slurm cluster report of the heartbeat

Revision ID: 0003_slurm
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_slurm"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(
            sa.Column(
                "executor",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="local",
            )
        )
        batch.add_column(sa.Column("cluster", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("cluster")
        batch.drop_column("executor")
