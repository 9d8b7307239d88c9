"""saga follower cursor

Sagas are derived by a follower after the commit rather than inside the tap's transaction.
The `saga_cursor` table holds how far it has read the events. The existing index's sagas
were derived up to its newest event, so the cursor starts there (a fresh index: at 0).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saga_cursor",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    now_ms = int(time.time() * 1000)
    op.execute(
        sa.text(
            "INSERT INTO saga_cursor (name, last_id, updated_at_ms) "
            "SELECT 'sagas', COALESCE(MAX(id), 0), :now FROM events"
        ).bindparams(now=now_ms)
    )


def downgrade() -> None:
    op.drop_table("saga_cursor")
