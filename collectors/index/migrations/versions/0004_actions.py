"""actions: replay/redrive jobs, their items and journal; the audit log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "action_jobs",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.Text, nullable=False, unique=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("cluster", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("remote", sa.Text),
        sa.Column("selection", sa.Text, nullable=False),
        sa.Column("target_topic", sa.Text),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("sent", sa.BigInteger, nullable=False),
        sa.Column("skipped", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("target_starts", sa.Text, nullable=False),
        sa.Column("lease_owner", sa.Text),
        sa.Column("lease_until_ms", sa.BigInteger),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("started_at_ms", sa.BigInteger),
        sa.Column("finished_at_ms", sa.BigInteger),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_action_jobs_status", "action_jobs", ["status"])
    op.create_index("ix_action_jobs_created", "action_jobs", ["created_at_ms"])

    op.create_table(
        "action_items",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("cluster", sa.Text, nullable=False),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("target_topic", sa.Text),
        sa.Column("target_partition", sa.Integer),
        sa.Column("target_offset", sa.BigInteger),
        sa.Column("note", sa.Text),
        sa.Column("done_at_ms", sa.BigInteger),
    )
    op.create_index("ux_action_items_job_seq", "action_items", ["job_id", "seq"], unique=True)
    op.create_index("ix_action_items_job_state", "action_items", ["job_id", "state"])
    op.create_index(
        "ix_action_items_source",
        "action_items",
        ["cluster", "source_topic", "source_partition", "source_offset"],
    )
    op.create_index(
        "ix_action_items_target",
        "action_items",
        ["target_topic", "target_partition", "target_offset"],
        sqlite_where=sa.text("target_offset IS NOT NULL"),
        postgresql_where=sa.text("target_offset IS NOT NULL"),
    )

    op.create_table(
        "action_journal",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_action_journal_job", "action_journal", ["job_id", "id"])

    op.create_table(
        "audit_log",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("remote", sa.Text),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at_ms"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "at_ms"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("action_journal")
    op.drop_table("action_items")
    op.drop_table("action_jobs")
