"""events partitioned by time on PostgreSQL

On PostgreSQL `events` becomes a table partitioned by range of `timestamp_ms`, so that
retention drops a whole day of events instead of deleting it row by row
(collectors/index/partitions.py creates the partitions ahead and drops the old ones). A
partitioned table's unique indexes must hold the partition key: the primary key becomes
(id, timestamp_ms) and the coordinates' unique index `ux_events_record` (cluster, topic,
partition, offset, timestamp_ms); a record has one timestamp, so it still finds a record
written twice. The hash indexes lose their segment (0010): each day partition has its own
(`ix_events_<column>_day`), which keeps ingest in the newest part as the segments did, and
a look-up probes each partition once. SQLite is unchanged.

The existing table is kept as it is, rows and indexes, and attached as the partition of
everything before the end of the day of its newest event (rows stamped later than a day
ahead of now move to the default partition first, so that partitions of the coming days
can exist). Attaching scans the table once and builds its two new unique indexes and its
six hash indexes: 4.1 s for a million events (bench/partitioning.py). An empty table is
simply replaced.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import logging
import time
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("eventscope.migrations")

# Frozen here: later changes of the models or of partitions.py must not change this.
DAY_MS = 86_400_000
SEGMENT_ROWS = 131_072  # of 0010's hash indexes, which the downgrade makes again
HASH_COLUMNS = (
    "key_hash",
    "event_id_hash",
    "correlation_hash",
    "causation_hash",
    "trace_hash",
    "saga_hash",
)
LEGACY = "events_unpartitioned"


def _parent_indexes() -> list[str]:
    statements = [
        "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, timestamp_ms)",
        'CREATE UNIQUE INDEX ux_events_record ON events (cluster, topic, "partition", "offset",'
        " timestamp_ms)",
        "CREATE INDEX ix_events_timestamp ON events (timestamp_ms)",
        "CREATE INDEX ix_events_dlq ON events (is_dlq, timestamp_ms) WHERE is_dlq",
        "CREATE INDEX ix_events_decode_pending ON events (cluster, id)"
        " WHERE decode_state = 'pending'",
    ]
    statements += [
        f"CREATE INDEX ix_events_{column}_day ON events ({column}) WHERE {column} IS NOT NULL"
        for column in HASH_COLUMNS
    ]
    return statements


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # The old table's indexes keep their names under the old table's (index names are
    # per schema); those the parent's match are adopted by the parent's when attached.
    op.execute(f"ALTER TABLE events RENAME TO {LEGACY}")
    op.execute(f"ALTER TABLE {LEGACY} RENAME CONSTRAINT events_pkey TO {LEGACY}_pkey")
    for name in [row[0] for row in bind.execute(
        text("SELECT indexname FROM pg_indexes WHERE tablename = :t AND indexname <> :pkey"),
        {"t": LEGACY, "pkey": f"{LEGACY}_pkey"},
    )]:  # fmt: skip
        # ix_events_timestamp -> events_unpartitioned_timestamp, and so on
        op.execute(f"ALTER INDEX {name} RENAME TO {LEGACY}_{name.split('_events_', 1)[1]}")
    op.execute(
        f"CREATE TABLE events (LIKE {LEGACY} INCLUDING DEFAULTS) PARTITION BY RANGE (timestamp_ms)"
    )
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    for statement in _parent_indexes():
        op.execute(statement)
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")

    newest = bind.execute(text(f"SELECT max(timestamp_ms) FROM {LEGACY}")).scalar()
    if newest is None:
        op.execute(f"DROP TABLE {LEGACY}")
        return
    began = time.monotonic()
    log.info("events: partitioning by time (once; the existing table is attached as is)")
    ahead_ms = (int(time.time() * 1000) // DAY_MS + 2) * DAY_MS
    end_ms = (min(int(newest), ahead_ms) // DAY_MS + 1) * DAY_MS
    # Rows stamped beyond that (clocks ahead) go to the default partition.
    op.execute(
        f"WITH moved AS (DELETE FROM {LEGACY} WHERE timestamp_ms >= {end_ms} RETURNING *) "
        "INSERT INTO events SELECT * FROM moved"
    )
    # Its primary key, unique index and hash indexes give way to the parent's, built on it
    # when attached.
    op.execute(f"ALTER TABLE {LEGACY} DROP CONSTRAINT {LEGACY}_pkey")
    op.execute(f"DROP INDEX {LEGACY}_coordinates")
    for column in HASH_COLUMNS:
        op.execute(f"DROP INDEX {LEGACY}_{column}")
    op.execute(
        f"ALTER TABLE events ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) TO ({end_ms})"
    )
    log.info("events: partitioned in %.1f s", time.monotonic() - began)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE events RENAME TO events_partitioned")
    op.execute(
        "ALTER TABLE events_partitioned RENAME CONSTRAINT events_pkey TO events_partitioned_pkey"
    )
    for name in [row[0] for row in bind.execute(
        text("SELECT indexname FROM pg_indexes WHERE tablename = 'events_partitioned'"
             " AND indexname <> 'events_partitioned_pkey'")
    )]:  # fmt: skip
        op.execute(f"ALTER INDEX {name} RENAME TO old_{name}")
    op.execute("CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS)")
    op.execute("INSERT INTO events SELECT * FROM events_partitioned")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    op.execute("DROP TABLE events_partitioned")
    op.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id)")
    op.execute(
        "CREATE UNIQUE INDEX ux_events_coordinates"
        ' ON events (cluster, topic, "partition", "offset")'
    )
    for statement in _parent_indexes()[2:5]:  # timestamp, dead letters, pending decodes
        op.execute(statement)
    for column in HASH_COLUMNS:  # as 0010 made them
        op.execute(
            f"CREATE INDEX ix_events_{column} ON events ((id / {SEGMENT_ROWS}), {column})"
            f" WHERE {column} IS NOT NULL"
        )
