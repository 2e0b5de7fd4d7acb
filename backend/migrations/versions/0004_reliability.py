"""reliability: the worker instance of a run's claim, per-attempt end reasons

Revision ID: 0004_reliability
Revises: 0003_slurm
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004_reliability"
down_revision: str | None = "0003_slurm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("worker_instance", _str(length=64), nullable=True))
        batch.add_column(sa.Column("attempt_log", sa.JSON(), nullable=True))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("instance", _str(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("instance")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("attempt_log")
        batch.drop_column("worker_instance")
