"""spans partitioned by time on PostgreSQL

As `events` in 0014: on PostgreSQL `spans` becomes a table partitioned by range of
`start_ns`, a partition per UTC day (collectors/index/partitions.py), so that retention
drops a day of spans, with their span links, instead of deleting them row by row. The
primary key becomes (id, start_ns) and the unique index of a span `ux_spans_trace_span_start`
(trace_id, span_id, start_ns): an exporter's retry carries the same start. The existing
table is attached as it is, as the partition of every day before the one after its
newest span's (no further than two days ahead; later spans move to the default
partition). SQLite is unchanged.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import logging
import time
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("eventscope.migrations")

# Frozen here: later changes of the models or of partitions.py must not change this.
DAY_NS = 86_400_000_000_000
LEGACY = "spans_unpartitioned"
PARENT_INDEXES = (
    "CREATE UNIQUE INDEX ux_spans_trace_span_start ON spans (trace_id, span_id, start_ns)",
    "CREATE INDEX ix_spans_start ON spans (start_ns)",
    'CREATE INDEX ix_spans_coordinates ON spans (topic, "partition", "offset")'
    ' WHERE "offset" IS NOT NULL',
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE spans RENAME TO {LEGACY}")
    op.execute(f"ALTER TABLE {LEGACY} RENAME CONSTRAINT spans_pkey TO {LEGACY}_pkey")
    for name in ("ux_spans_trace_span", "ix_spans_start", "ix_spans_coordinates"):
        op.execute(f"ALTER INDEX {name} RENAME TO {LEGACY}_{name.split('_spans_', 1)[1]}")
    op.execute(
        f"CREATE TABLE spans (LIKE {LEGACY} INCLUDING DEFAULTS) PARTITION BY RANGE (start_ns)"
    )
    op.execute("ALTER SEQUENCE spans_id_seq OWNED BY spans.id")
    op.execute("ALTER TABLE spans ADD CONSTRAINT spans_pkey PRIMARY KEY (id, start_ns)")
    for statement in PARENT_INDEXES:
        op.execute(statement)
    op.execute("CREATE TABLE spans_default PARTITION OF spans DEFAULT")

    newest = bind.execute(text(f"SELECT max(start_ns) FROM {LEGACY}")).scalar()
    if newest is None:
        op.execute(f"DROP TABLE {LEGACY}")
        return
    began = time.monotonic()
    log.info("spans: partitioning by time (once; the existing table is attached as is)")
    ahead_ns = (time.time_ns() // DAY_NS + 2) * DAY_NS
    end_ns = (min(int(newest), ahead_ns) // DAY_NS + 1) * DAY_NS
    op.execute(
        f"WITH moved AS (DELETE FROM {LEGACY} WHERE start_ns >= {end_ns} RETURNING *) "
        "INSERT INTO spans SELECT * FROM moved"
    )
    # Its primary key and unique index give way to the parent's, built on it when attached.
    op.execute(f"ALTER TABLE {LEGACY} DROP CONSTRAINT {LEGACY}_pkey")
    op.execute(f"DROP INDEX {LEGACY}_trace_span")
    op.execute(
        f"ALTER TABLE spans ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) TO ({end_ns})"
    )
    log.info("spans: partitioned in %.1f s", time.monotonic() - began)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE spans RENAME TO spans_partitioned")
    op.execute(
        "ALTER TABLE spans_partitioned RENAME CONSTRAINT spans_pkey TO spans_partitioned_pkey"
    )
    for name in ("ux_spans_trace_span_start", "ix_spans_start", "ix_spans_coordinates"):
        op.execute(f"ALTER INDEX {name} RENAME TO old_{name}")
    op.execute("CREATE TABLE spans (LIKE spans_partitioned INCLUDING DEFAULTS)")
    op.execute("INSERT INTO spans SELECT * FROM spans_partitioned")
    op.execute("ALTER SEQUENCE spans_id_seq OWNED BY spans.id")
    op.execute("DROP TABLE spans_partitioned")
    op.execute("ALTER TABLE spans ADD CONSTRAINT spans_pkey PRIMARY KEY (id)")
    op.execute("CREATE UNIQUE INDEX ux_spans_trace_span ON spans (trace_id, span_id)")
    for statement in PARENT_INDEXES[1:]:
        op.execute(statement)
