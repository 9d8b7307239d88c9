"""identity look-ups through 64-bit hashes instead of text indexes

The five text indexes on event_id, correlation_id, causation_id, trace_id and saga_id give
way to indexes on hashes of those values (collectors/index/identity.py): random text in a
B-tree costs ingest about one written page per row. Existing rows get their hashes here,
in chunks; on a large index this takes a few minutes once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collectors.index.identity import identity_hashes

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HASHED = {
    "event_id": "event_id_hash",
    "correlation_id": "correlation_hash",
    "causation_id": "causation_hash",
    "trace_id": "trace_hash",
    "saga_id": "saga_hash",
}
TEXT_INDEXES = {
    "event_id": "ix_events_event_id",
    "correlation_id": "ix_events_correlation_id",
    "causation_id": "ix_events_causation_id",
    "trace_id": "ix_events_trace_id",
    "saga_id": "ix_events_saga_id",
}
CHUNK = 20_000
REPORT_EVERY = 1_000_000

log = logging.getLogger("eventscope.migrations")


def upgrade() -> None:
    for column in HASHED.values():
        op.add_column("events", sa.Column(column, sa.BigInteger))
    _fill_hashes()
    for column in HASHED.values():
        _partial_index(f"ix_events_{column}", column)
    for index in TEXT_INDEXES.values():
        op.drop_index(index, table_name="events")


def _fill_hashes() -> None:
    connection = op.get_bind()
    select = sa.text(
        "SELECT id, event_id, correlation_id, causation_id, trace_id, saga_id FROM events "
        "WHERE id > :after AND (event_id IS NOT NULL OR correlation_id IS NOT NULL "
        "OR causation_id IS NOT NULL OR trace_id IS NOT NULL OR saga_id IS NOT NULL) "
        "ORDER BY id LIMIT :limit"
    )
    update = sa.text(
        "UPDATE events SET event_id_hash = :h0, correlation_hash = :h1, causation_hash = :h2, "
        "trace_hash = :h3, saga_hash = :h4 WHERE id = :id"
    )
    after = done = 0
    while True:
        rows = connection.execute(select, {"after": after, "limit": CHUNK}).all()
        if not rows:
            if done:
                log.info("identity hashes: %d events done", done)
            return
        changes = []
        for row_id, *identities in rows:
            hashes = identity_hashes(*identities)
            changes.append({"id": row_id, **{f"h{i}": h for i, h in enumerate(hashes)}})
        connection.execute(update, changes)
        after = rows[-1][0]
        done += len(rows)
        if done % REPORT_EVERY < CHUNK:
            log.info("identity hashes: %d events so far (once, for the upgrade)", done)


def _partial_index(name: str, column: str) -> None:
    where = sa.text(f"{column} IS NOT NULL")
    op.create_index(name, "events", [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for column, index in TEXT_INDEXES.items():
        _partial_index(index, column)
    for column in HASHED.values():
        op.drop_index(f"ix_events_{column}", table_name="events")
        op.drop_column("events", column)
