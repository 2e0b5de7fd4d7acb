"""checkpoint_scores: lm-evaluation-harness results per run, checkpoint, task and metric

Revision ID: 0015_checkpoint_scores
Revises: 0014_teams
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_checkpoint_scores"
down_revision: str | None = "0014_teams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkpoint_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id",
            sa.String(length=32),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("checkpoint", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("stderr", sa.Float(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=True),
        sa.Column("num_fewshot", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "run_id", "checkpoint", "task", "metric", name="uq_checkpoint_scores_key"
        ),
    )
    op.create_index("ix_checkpoint_scores_run_id", "checkpoint_scores", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_checkpoint_scores_run_id", table_name="checkpoint_scores")
    op.drop_table("checkpoint_scores")
