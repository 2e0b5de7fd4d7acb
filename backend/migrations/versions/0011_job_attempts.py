"""jobs: the attempt, 2 once a job of an idempotent kind was tried again after its worker was
lost (its lease is per attempt, so the lost worker's late reports are refused)

Revision ID: 0011_job_attempts
Revises: 0010_worker_volumes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_job_attempts"
down_revision: str | None = "0010_worker_volumes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# In place (no batch copy of the table): see 0009.
def upgrade() -> None:
    op.add_column("jobs", sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("jobs", "attempt")
