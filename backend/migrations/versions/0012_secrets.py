"""secrets: values the panel stores encrypted (the Hub token set in Settings), each sealed
under the panel's key (``backend/core/crypto.py``) with the key's id and public facts beside it

Revision ID: 0012_secrets
Revises: 0011_job_attempts
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012_secrets"
down_revision: str | None = "0011_job_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", _str(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("key_id", _str(length=16), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
