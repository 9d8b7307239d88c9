"""events and positions

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IDENTITY_COLUMNS = ("event_id", "correlation_id", "causation_id", "trace_id", "saga_id")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
        sa.Column("indexed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("key_hash", sa.BigInteger),
        sa.Column("value", sa.LargeBinary),
        sa.Column("value_size", sa.Integer, nullable=False),
        sa.Column("value_truncated", sa.Boolean, nullable=False),
        sa.Column("is_tombstone", sa.Boolean, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("schema_id", sa.Integer),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text),
        sa.Column("event_type", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("correlation_id", sa.Text),
        sa.Column("causation_id", sa.Text),
        sa.Column("trace_id", sa.Text),
        sa.Column("span_id", sa.Text),
        sa.Column("saga_id", sa.Text),
        sa.Column("is_dlq", sa.Boolean, nullable=False),
        sa.Column("dlq_original_topic", sa.Text),
        sa.Column("dlq_original_partition", sa.Integer),
        sa.Column("dlq_original_offset", sa.BigInteger),
        sa.Column("dlq_error_class", sa.Text),
        sa.Column("dlq_error_message", sa.Text),
        sa.Column("dlq_stacktrace", sa.Text),
        sa.Column("dlq_attempts", sa.Integer),
        sa.Column("dlq_format", sa.Text),
    )
    op.create_index(
        "ux_events_coordinates", "events", ["cluster", "topic", "partition", "offset"], unique=True
    )
    op.create_index("ix_events_timestamp", "events", ["timestamp_ms"])
    op.create_index(
        "ix_events_key_hash", "events", ["key_hash"],
        sqlite_where=sa.text("key_hash IS NOT NULL"),
        postgresql_where=sa.text("key_hash IS NOT NULL"),
    )  # fmt: skip
    for column in IDENTITY_COLUMNS:
        op.create_index(
            f"ix_events_{column}", "events", [column],
            sqlite_where=sa.text(f"{column} IS NOT NULL"),
            postgresql_where=sa.text(f"{column} IS NOT NULL"),
        )  # fmt: skip
    op.create_index(
        "ix_events_dlq", "events", ["is_dlq", "timestamp_ms"],
        sqlite_where=sa.text("is_dlq"), postgresql_where=sa.text("is_dlq"),
    )  # fmt: skip
    op.create_table(
        "positions",
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_table("events")
