"""consumer lag: latest group state, samples, rollups, status changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lag_groups",
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("group_id", sa.Text, primary_key=True),
        sa.Column("sampled_at_ms", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("complete", sa.Float, nullable=False),
        sa.Column("total_lag", sa.BigInteger, nullable=False),
        sa.Column("max_lag", sa.BigInteger, nullable=False),
        sa.Column("max_time_lag_s", sa.Float),
        sa.Column("members", sa.Integer, nullable=False),
        sa.Column("partition_count", sa.Integer, nullable=False),
        sa.Column("topics", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "lag_samples",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.Text, nullable=False),
        sa.Column("group_id", sa.Text, nullable=False),
        sa.Column("sampled_at_ms", sa.BigInteger, nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("total_lag", sa.BigInteger, nullable=False),
        sa.Column("max_time_lag_s", sa.Float),
    )
    op.create_index(
        "ix_lag_samples_group_time", "lag_samples", ["cluster", "group_id", "sampled_at_ms"]
    )
    op.create_index("ix_lag_samples_time", "lag_samples", ["sampled_at_ms"])
    op.create_table(
        "lag_rollups",
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("group_id", sa.Text, primary_key=True),
        sa.Column("bucket_ms", sa.BigInteger, primary_key=True),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("severity_max", sa.Integer, nullable=False),
        sa.Column("total_lag_max", sa.BigInteger, nullable=False),
        sa.Column("total_lag_avg", sa.Float, nullable=False),
        sa.Column("max_time_lag_s", sa.Float),
    )
    op.create_index("ix_lag_rollups_bucket", "lag_rollups", ["bucket_ms"])
    op.create_table(
        "lag_status_changes",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.Text, nullable=False),
        sa.Column("group_id", sa.Text, nullable=False),
        sa.Column("changed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("previous", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_lag_status_changes_group",
        "lag_status_changes",
        ["cluster", "group_id", "changed_at_ms"],
    )
    op.create_index("ix_lag_status_changes_time", "lag_status_changes", ["changed_at_ms"])


def downgrade() -> None:
    op.drop_table("lag_status_changes")
    op.drop_table("lag_rollups")
    op.drop_table("lag_samples")
    op.drop_table("lag_groups")
