"""sagas: materialized saga instances

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sagas",
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("saga_id", sa.Text, primary_key=True),
        sa.Column("saga_type", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("first_ms", sa.BigInteger, nullable=False),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
        sa.Column("step_count", sa.Integer, nullable=False),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.Column("problem_count", sa.Integer, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sagas_saga_id", "sagas", ["saga_id"])
    op.create_index("ix_sagas_status_last", "sagas", ["status", "last_ms"])
    op.create_index("ix_sagas_type_status", "sagas", ["saga_type", "status"])
    op.create_index("ix_sagas_last", "sagas", ["last_ms"])
    op.create_index("ix_sagas_first", "sagas", ["first_ms"])


def downgrade() -> None:
    op.drop_table("sagas")
