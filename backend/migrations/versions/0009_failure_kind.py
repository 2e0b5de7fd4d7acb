"""runs: the last attempt's failure kind (``cpt_contract.outcomes.FailureKind``), decided by the
worker or the recovery loop, so that nothing parses a reason's text for it

Revision ID: 0009_failure_kind
Revises: 0008_metric_levels_every_k
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_failure_kind"
down_revision: str | None = "0008_metric_levels_every_k"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not a batch copy: SQLite (3.35+) adds and drops a column in place, while
# a copy of ``runs`` would drop the old table, and with foreign keys on that deletes every row
# that refers to a run (events, metrics, checkpoints) by cascade.
def upgrade() -> None:
    op.add_column("runs", sa.Column("failure_kind", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "failure_kind")
