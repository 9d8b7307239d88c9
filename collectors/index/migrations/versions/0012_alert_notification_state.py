"""alert notification state and keep_firing_for

Four nullable columns on `alerts`: when a notification first reported the alert firing,
when one last mentioned it, when its condition cleared while `keep_firing_for` kept it
firing, and, for an alert that resolved without any notification, why none was sent.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMES = ("notified_at_ms", "last_notified_at_ms", "cleared_at_ms")


def upgrade() -> None:
    for column in TIMES:
        op.add_column("alerts", sa.Column(column, sa.BigInteger))
    op.add_column("alerts", sa.Column("notification_note", sa.Text))


def downgrade() -> None:
    for column in (*TIMES, "notification_note"):
        op.drop_column("alerts", column)
