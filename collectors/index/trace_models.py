"""Index tables of the tracing area: OTLP spans and their span links.

A span row keeps what the trace timeline and the record linking need as columns (ids,
service, kind, timing, status, Kafka coordinates) and the rest (attributes, events,
links) as JSON text. `(trace_id, span_id)` is unique: exporters retry, and a retried
export must not duplicate spans. Span links get a table of their own because batch
consumers are found by the span *they link to*, which needs an index.

Lineage edges are not stored: see collectors/lineage.py for why.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from collectors.index.models import ROW_ID


class Span(SQLModel, table=True):
    __tablename__ = "spans"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    trace_id: str = Field(sa_column=Column(Text, nullable=False))
    span_id: str = Field(sa_column=Column(Text, nullable=False))
    parent_span_id: str | None = Field(default=None, sa_column=Column(Text))
    name: str = Field(sa_column=Column(Text, nullable=False))
    kind: int = Field(default=0)
    service_name: str | None = Field(default=None, sa_column=Column(Text))
    start_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    end_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    duration_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    status_code: int = Field(default=0)
    status_message: str | None = Field(default=None, sa_column=Column(Text))
    attributes: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    resource_attributes: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    events: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    links: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    trace_state: str | None = Field(default=None, sa_column=Column(Text))
    scope_name: str | None = Field(default=None, sa_column=Column(Text))
    scope_version: str | None = Field(default=None, sa_column=Column(Text))
    dropped_attributes_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    dropped_events_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    dropped_links_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    messaging_system: str | None = Field(default=None, sa_column=Column(Text))
    messaging_operation: str | None = Field(default=None, sa_column=Column(Text))
    topic: str | None = Field(default=None, sa_column=Column(Text))
    partition: int | None = Field(default=None, sa_column=Column(Integer))
    offset: int | None = Field(default=None, sa_column=Column(BigInteger))
    consumer_group: str | None = Field(default=None, sa_column=Column(Text))
    message_key: str | None = Field(default=None, sa_column=Column(Text))
    message_id: str | None = Field(default=None, sa_column=Column(Text))
    batch_count: int | None = Field(default=None, sa_column=Column(BigInteger))
    received_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))

    __table_args__ = (
        # A span once. On PostgreSQL `spans` is partitioned by day of its start (collectors/
        # index/partitions.py) and a unique index must hold the partition key: a retried
        # export carries the same start.
        Index("ux_spans_trace_span", "trace_id", "span_id", unique=True,
              info={"dialect": "sqlite"}),
        Index("ux_spans_trace_span_start", "trace_id", "span_id", "start_ns", unique=True,
              info={"dialect": "postgresql"}),
        Index("ix_spans_start", "start_ns"),
        Index("ix_spans_coordinates", "topic", "partition", "offset",
              sqlite_where=text('"offset" IS NOT NULL'),
              postgresql_where=text('"offset" IS NOT NULL')),
    )  # fmt: skip


class SpanLink(SQLModel, table=True):
    """A span link: span (trace_id, span_id) points at (linked_trace_id, linked_span_id)."""

    __tablename__ = "span_links"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    trace_id: str = Field(sa_column=Column(Text, nullable=False))
    span_id: str = Field(sa_column=Column(Text, nullable=False))
    linked_trace_id: str = Field(sa_column=Column(Text, nullable=False))
    linked_span_id: str = Field(sa_column=Column(Text, nullable=False))

    __table_args__ = (
        Index("ux_span_links", "trace_id", "span_id", "linked_trace_id", "linked_span_id",
              unique=True),
        Index("ix_span_links_linked", "linked_trace_id", "linked_span_id"),
    )  # fmt: skip


spans_table = Span.__table__  # type: ignore[attr-defined]
span_links_table = SpanLink.__table__  # type: ignore[attr-defined]
