"""teams: users with roles and quotas, browser sessions, personal API tokens, the audit log, and
an owner on every run, job and experiment. The first admin (``admin``, no password yet: the API gives it a
one-time one at start) owns what was made before, and the panel's single API token acts as it.

Revision ID: 0014_teams
Revises: 0013_experiments
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0014_teams"
down_revision: str | None = "0013_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIRST_ADMIN = "admin"


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(32), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("max_live_runs", sa.Integer(), nullable=True),
        sa.Column("max_queued_runs", sa.Integer(), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf_digest", sa.String(64), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=False),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=False),
        sa.Column("revoked_at", _tz(), nullable=True),
        sa.Column("last_used_at", _tz(), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("target", sa.String(200), nullable=False, server_default=""),
        sa.Column("changes", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    # In place (no batch copy of the runs table: SQLite would cascade its deletes), see 0009.
    op.add_column("runs", sa.Column("owner", sa.String(32), nullable=True))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.add_column("jobs", sa.Column("owner", sa.String(32), nullable=True))
    op.add_column("experiments", sa.Column("owner", sa.String(32), nullable=True))
    op.bulk_insert(
        users,
        [
            {
                "name": FIRST_ADMIN,
                "role": "admin",
                "password_hash": None,
                "active": True,
                "created_at": datetime.now(UTC),
            }
        ],
    )
    op.execute(sa.text("UPDATE runs SET owner = :o").bindparams(o=FIRST_ADMIN))
    op.execute(sa.text("UPDATE jobs SET owner = :o").bindparams(o=FIRST_ADMIN))
    op.execute(sa.text("UPDATE experiments SET owner = :o").bindparams(o=FIRST_ADMIN))


def downgrade() -> None:
    op.drop_column("experiments", "owner")
    op.drop_column("jobs", "owner")
    op.drop_index("ix_runs_owner", "runs")
    op.drop_column("runs", "owner")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("user_sessions")
    op.drop_table("users")
