"""jobs: merge, tokenizer and scan jobs with their logs

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", _str(length=32), nullable=False),
        sa.Column("kind", _str(length=32), nullable=False),
        sa.Column("status", _str(length=16), nullable=False),
        sa.Column("status_reason", _str(length=2000), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("queue", _str(length=64), nullable=False),
        sa.Column("worker", _str(length=200), nullable=True),
        sa.Column("run_id", _str(length=32), nullable=True),
        sa.Column("log_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_kind", "jobs", ["kind"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_run_id", "jobs", ["run_id"])
    op.create_table(
        "job_log_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", _str(length=32), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "offset", name="uq_job_log_chunks_job_offset"),
    )
    op.create_index("ix_job_log_chunks_job_id", "job_log_chunks", ["job_id"])


def downgrade() -> None:
    op.drop_table("job_log_chunks")
    op.drop_table("jobs")
