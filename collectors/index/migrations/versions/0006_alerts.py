"""alerts: rules, alert instances, groups, silences, receivers, outbox, delivery attempts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.Text),
    )
    op.create_index("ux_alert_rules_name", "alert_rules", ["name"], unique=True)

    op.create_table(
        "alerts",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("rule_name", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("receivers", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("generator_url", sa.Text, nullable=False),
        sa.Column("active_since_ms", sa.BigInteger, nullable=False),
        sa.Column("starts_at_ms", sa.BigInteger),
        sa.Column("ends_at_ms", sa.BigInteger),
        sa.Column("evaluated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
    op.create_index("ix_alerts_ends_at", "alerts", ["ends_at_ms"])

    op.create_table(
        "alert_groups",
        sa.Column("receiver", sa.Text, primary_key=True),
        sa.Column("group_key", sa.Text, primary_key=True),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("last_notified_at_ms", sa.BigInteger),
        sa.Column("last_notified_hash", sa.Text),
        sa.Column("notified_firing", sa.Text, nullable=False),
        sa.Column("notified_resolved", sa.Text, nullable=False),
    )

    op.create_table(
        "alert_silences",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("starts_at_ms", sa.BigInteger, nullable=False),
        sa.Column("ends_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_alert_silences_ends_at", "alert_silences", ["ends_at_ms"])

    op.create_table(
        "alert_receivers",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("timeout_s", sa.Float, nullable=False),
        sa.Column("max_alerts", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ux_alert_receivers_name", "alert_receivers", ["name"], unique=True)

    op.create_table(
        "alert_outbox",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("receiver", sa.Text, nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("webhook_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_at_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ux_alert_outbox_webhook_id", "alert_outbox", ["webhook_id"], unique=True)
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["state", "next_attempt_at_ms"])
    op.create_index("ix_alert_outbox_receiver", "alert_outbox", ["receiver", "created_at_ms"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.BigInteger),
        sa.Column("receiver", sa.Text, nullable=False),
        sa.Column("webhook_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("attempted_at_ms", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index(
        "ix_alert_deliveries_receiver", "alert_deliveries", ["receiver", "attempted_at_ms"]
    )
    op.create_index("ix_alert_deliveries_outbox", "alert_deliveries", ["outbox_id"])


def downgrade() -> None:
    for table in (
        "alert_deliveries",
        "alert_outbox",
        "alert_receivers",
        "alert_silences",
        "alert_groups",
        "alerts",
        "alert_rules",
    ):
        op.drop_table(table)
