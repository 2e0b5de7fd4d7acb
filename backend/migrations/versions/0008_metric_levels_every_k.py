"""metric store: a level for every bucket width 2^k (k = 8..20, was every other k), so a
downsampled read keeps each bucket's min and max as they are from at most max_points / 2 rows;
every series' levels rebuilt from its segments

Revision ID: 0008_metric_levels_every_k
Revises: 0007_metric_segments
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_metric_levels_every_k"
down_revision: str | None = "0007_metric_segments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The levels the previous release kept (and reads): the others go on a downgrade.
_PREVIOUS_LEVELS = (8, 10, 12, 14, 16, 18, 20)


#: The levels this release keeps: every k from 8 to 20.
_LEVELS = tuple(range(8, 21))


def upgrade() -> None:
    from backend.migrations.frozen import metric_store_0008 as metric_store

    # The levels are derived data: rebuilt from the segments with the fold (frozen) ingest used.
    metric_store.rebuild_levels(op.get_bind(), _LEVELS)


def downgrade() -> None:
    # The previous release's levels are a subset, each row as that release folded it.
    keep = ", ".join(str(k) for k in _PREVIOUS_LEVELS)
    op.get_bind().execute(sa.text(f"DELETE FROM metric_levels WHERE level NOT IN ({keep})"))
