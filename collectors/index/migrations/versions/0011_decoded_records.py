"""decoded records: registry and schema-file decoding results, schema usage per topic

Five columns on `events` (the key's schema id, the decoded key and value as JSON text, the
decoding state and its note), a partial index on the records still waiting to be decoded,
and the `schema_usage` table. Records indexed earlier with a registry frame (a schema id)
are marked pending, so that the re-decode pass decodes them once a registry answers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("decode_state = 'pending'")


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): no copy of the table, however large.
    op.add_column("events", sa.Column("key_schema_id", sa.Integer))
    for column in ("decoded_key", "decoded_value", "decode_state", "decode_note"):
        op.add_column("events", sa.Column(column, sa.Text))
    op.execute(
        "UPDATE events SET decode_state = 'pending', "
        "decode_note = 'indexed before registry records were decoded' "
        "WHERE schema_id IS NOT NULL"
    )
    op.create_index(
        "ix_events_decode_pending", "events", ["cluster", "id"],
        sqlite_where=PENDING, postgresql_where=PENDING,
    )  # fmt: skip
    op.create_table(
        "schema_usage",
        sa.Column("cluster", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("part", sa.Text, primary_key=True),
        sa.Column("schema_id", sa.BigInteger, primary_key=True),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schema_usage")
    op.drop_index("ix_events_decode_pending", table_name="events")
    for column in ("decode_note", "decode_state", "decoded_value", "decoded_key", "key_schema_id"):
        op.drop_column("events", column)
