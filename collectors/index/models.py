"""The index tables.

`events` is append-mostly: one row per Kafka record, written in batches with SQLAlchemy
Core (never one ORM object per record). Secondary indexes exist only for what the console
looks up. Identities and keys are indexed through 64-bit hashes of their text (see
collectors/index/identity.py), partially (WHERE col IS NOT NULL) because most records
carry only some of the identity fields, and by segment of row ids (`id / SEGMENT_ROWS`
first, then the hash): a hash is random, and a B-tree of random keys costs ingest a
written page per row once it outgrows the cache, more and more as the index grows. With
the segment first, new rows only ever touch the newest segment's part of each index.

Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    LargeBinary,
    Text,
    literal_column,
    text,
)
from sqlmodel import Field, SQLModel

# Identity column -> the indexed column holding its hash (collectors/index/identity.py).
IDENTITY_HASH_COLUMNS = {
    "event_id": "event_id_hash",
    "correlation_id": "correlation_hash",
    "causation_id": "causation_hash",
    "trace_id": "trace_hash",
    "saga_id": "saga_hash",
}

HASH_COLUMNS = ("key_hash", *IDENTITY_HASH_COLUMNS.values())

# Rows per segment of the hash indexes (SQLite's): small enough that the newest segment's part of
# every hash index stays in the page cache, large enough that a look-up probing every
# segment stays fast (80 probes at 10M events; docs/benchmarks.md). Changing it needs a
# migration that rebuilds the indexes.
SEGMENT_ROWS = 131_072

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the fast rowid alias.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class Event(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(
        default=None,
        sa_column=Column(ROW_ID, primary_key=True, autoincrement=True),
    )
    cluster: str = Field(sa_column=Column(Text, nullable=False))
    topic: str = Field(sa_column=Column(Text, nullable=False))
    partition: int = Field(nullable=False)
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    indexed_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))

    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    key_hash: int | None = Field(default=None, sa_column=Column(BigInteger))
    value: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    value_size: int = Field(default=-1)
    value_truncated: bool = Field(default=False)
    is_tombstone: bool = Field(default=False)
    content_type: str = Field(default="binary", sa_column=Column(Text, nullable=False))
    schema_id: int | None = Field(default=None)
    # Records written through a schema registry or described by a schema file: the decoded
    # form (JSON text) that search reads and pages show, and whether decoding worked
    # (collectors/schemas/decoding.py: decoded, pending or failed, with a note why not).
    key_schema_id: int | None = Field(default=None)
    decoded_key: str | None = Field(default=None, sa_column=Column(Text))
    decoded_value: str | None = Field(default=None, sa_column=Column(Text))
    decode_state: str | None = Field(default=None, sa_column=Column(Text))
    decode_note: str | None = Field(default=None, sa_column=Column(Text))
    headers: str = Field(default="[]", sa_column=Column(Text, nullable=False))

    event_id: str | None = Field(default=None, sa_column=Column(Text))
    event_type: str | None = Field(default=None, sa_column=Column(Text))
    source: str | None = Field(default=None, sa_column=Column(Text))
    correlation_id: str | None = Field(default=None, sa_column=Column(Text))
    causation_id: str | None = Field(default=None, sa_column=Column(Text))
    trace_id: str | None = Field(default=None, sa_column=Column(Text))
    span_id: str | None = Field(default=None, sa_column=Column(Text))
    saga_id: str | None = Field(default=None, sa_column=Column(Text))

    is_dlq: bool = Field(default=False)
    dlq_original_topic: str | None = Field(default=None, sa_column=Column(Text))
    dlq_original_partition: int | None = Field(default=None)
    dlq_original_offset: int | None = Field(default=None, sa_column=Column(BigInteger))
    dlq_error_class: str | None = Field(default=None, sa_column=Column(Text))
    dlq_error_message: str | None = Field(default=None, sa_column=Column(Text))
    dlq_stacktrace: str | None = Field(default=None, sa_column=Column(Text))
    dlq_attempts: int | None = Field(default=None)
    dlq_format: str | None = Field(default=None, sa_column=Column(Text))

    # Hashes of the identity columns, indexed in their place (collectors/index/identity.py).
    event_id_hash: int | None = Field(default=None, sa_column=Column(BigInteger))
    correlation_hash: int | None = Field(default=None, sa_column=Column(BigInteger))
    causation_hash: int | None = Field(default=None, sa_column=Column(BigInteger))
    trace_hash: int | None = Field(default=None, sa_column=Column(BigInteger))
    saga_hash: int | None = Field(default=None, sa_column=Column(BigInteger))

    __table_args__ = (
        # A record once: by its coordinates on SQLite; on PostgreSQL, whose `events` is
        # partitioned by time (collectors/index/partitions.py), a unique index must hold
        # the partition key, and a record has one timestamp. `info["dialect"]` names the
        # one backend an index exists on (collectors/index/tables.exists_on).
        Index("ux_events_coordinates", "cluster", "topic", "partition", "offset", unique=True,
              info={"dialect": "sqlite"}),
        Index("ux_events_record", "cluster", "topic", "partition", "offset", "timestamp_ms",
              unique=True, info={"dialect": "postgresql"}),
        Index("ix_events_timestamp", "timestamp_ms"),
        # The hash indexes: by segment of row ids on SQLite; on PostgreSQL the day
        # partitions do what the segments do (collectors/index/identity.py).
        *(Index(f"ix_events_{column}", text(f"(id / {SEGMENT_ROWS})"), column,
                sqlite_where=text(f"{column} IS NOT NULL"), info={"dialect": "sqlite"})
          for column in HASH_COLUMNS),
        *(Index(f"ix_events_{column}_day", column,
                postgresql_where=text(f"{column} IS NOT NULL"), info={"dialect": "postgresql"})
          for column in HASH_COLUMNS),
        Index("ix_events_dlq", "is_dlq", "timestamp_ms", sqlite_where=text("is_dlq"),
              postgresql_where=text("is_dlq")),
        Index("ix_events_decode_pending", "cluster", "id",
              sqlite_where=text("decode_state = 'pending'"),
              postgresql_where=text("decode_state = 'pending'")),
    )  # fmt: skip


class SchemaUsage(SQLModel, table=True):
    """Which schema ids each topic's values and keys were written with, and when: the
    schema pages' "used by" and the first sign of a producer changing its schema."""

    __tablename__ = "schema_usage"

    cluster: str = Field(sa_column=Column(Text, primary_key=True))
    topic: str = Field(sa_column=Column(Text, primary_key=True))
    part: str = Field(sa_column=Column(Text, primary_key=True))  # "value" or "key"
    schema_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    first_seen_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class Position(SQLModel, table=True):
    """Where the collector resumes: written in the same transaction as the rows it covers."""

    __tablename__ = "positions"

    cluster: str = Field(sa_column=Column(Text, primary_key=True))
    topic: str = Field(sa_column=Column(Text, primary_key=True))
    partition: int = Field(primary_key=True)
    next_offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


events_table = Event.__table__  # type: ignore[attr-defined]

# The condition that selects dead letters, a bare `events.is_dlq`: SQLite uses the partial
# index ix_events_dlq (WHERE is_dlq) only for that exact term, not for the `is_dlq = 1`
# SQLAlchemy writes for a Boolean column.
EVENTS_IS_DLQ: ColumnElement[Any] = literal_column("events.is_dlq")
positions_table = Position.__table__  # type: ignore[attr-defined]
schema_usage_table = SchemaUsage.__table__  # type: ignore[attr-defined]
