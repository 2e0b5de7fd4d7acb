"""workers: the free space of each worker's data, runs and cache volumes and allowed roots, as
its heartbeat reports them (health and the submit check read them)

Revision ID: 0010_worker_volumes
Revises: 0009_failure_kind
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_worker_volumes"
down_revision: str | None = "0009_failure_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# In place (no batch copy of the table): see 0009.
def upgrade() -> None:
    op.add_column("workers", sa.Column("volumes", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("workers", "volumes")
