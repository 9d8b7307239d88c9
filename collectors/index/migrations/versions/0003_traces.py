"""spans and span links

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "spans",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("trace_id", sa.Text, nullable=False),
        sa.Column("span_id", sa.Text, nullable=False),
        sa.Column("parent_span_id", sa.Text),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Integer, nullable=False),
        sa.Column("service_name", sa.Text),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("resource_attributes", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("links", sa.Text, nullable=False),
        sa.Column("trace_state", sa.Text),
        sa.Column("scope_name", sa.Text),
        sa.Column("scope_version", sa.Text),
        sa.Column("dropped_attributes_count", sa.BigInteger, nullable=False),
        sa.Column("dropped_events_count", sa.BigInteger, nullable=False),
        sa.Column("dropped_links_count", sa.BigInteger, nullable=False),
        sa.Column("messaging_system", sa.Text),
        sa.Column("messaging_operation", sa.Text),
        sa.Column("topic", sa.Text),
        sa.Column("partition", sa.Integer),
        sa.Column("offset", sa.BigInteger),
        sa.Column("consumer_group", sa.Text),
        sa.Column("message_key", sa.Text),
        sa.Column("message_id", sa.Text),
        sa.Column("batch_count", sa.BigInteger),
        sa.Column("received_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_spans_trace_span", "spans", ["trace_id", "span_id"], unique=True)
    op.create_index("ix_spans_start", "spans", ["start_ns"])
    op.create_index(
        "ix_spans_coordinates", "spans", ["topic", "partition", "offset"],
        sqlite_where=sa.text('"offset" IS NOT NULL'),
        postgresql_where=sa.text('"offset" IS NOT NULL'),
    )  # fmt: skip
    op.create_table(
        "span_links",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("trace_id", sa.Text, nullable=False),
        sa.Column("span_id", sa.Text, nullable=False),
        sa.Column("linked_trace_id", sa.Text, nullable=False),
        sa.Column("linked_span_id", sa.Text, nullable=False),
    )
    op.create_index(
        "ux_span_links", "span_links",
        ["trace_id", "span_id", "linked_trace_id", "linked_span_id"], unique=True,
    )  # fmt: skip
    op.create_index("ix_span_links_linked", "span_links", ["linked_trace_id", "linked_span_id"])


def downgrade() -> None:
    op.drop_table("span_links")
    op.drop_table("spans")
