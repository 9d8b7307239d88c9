"""Spans in the index, and how spans and Kafka records find each other.

Storing: `store_spans` writes the `SpanRecord`s that collectors/otlp.py decoded, with their
span links, in one transaction; a retried export is ignored row by row (unique trace id +
span id), so exporters may retry freely.

Linking (read side, all by indexed columns, bounded by the caller's caps):

* A record's `traceparent` names the context it was produced in: the producer span, or
  the application span that was current when it was sent (`record_contexts`).
* A span *processed* a record when its messaging attributes name the record's exact
  coordinates (`messaging.destination.name` + partition + `messaging.kafka.offset`), or
  when it is a CONSUMER span whose parent is the record's context (single-message
  processing), or when it links to the record's context (batch consumers: one span, many
  links). Coordinates, when the span has them, must agree: a span that names another
  topic or offset did not process this record even if it shares the context.
* A span *produced* a record when the record's traceparent names it or one of its
  descendants, or when a producer span's coordinates name the record.

Spans do not name a cluster: a coordinate match is across clusters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from collectors.index.identity import identity_equals, identity_in
from collectors.index.models import events_table as events
from collectors.index.trace_models import span_links_table, spans_table
from collectors.otlp_model import SpanRecord

SPAN_KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")
KIND_PRODUCER = 4
KIND_CONSUMER = 5
STATUS_ERROR = 2
CHUNK = 400  # ids per IN list: well under SQLite's bound-parameter limit
CONSUME_OPERATIONS = frozenset({"process", "receive", "deliver", "poll"})
PRODUCE_OPERATIONS = frozenset({"send", "publish", "create"})

Context = tuple[str, str]  # (trace id, span id), lowercase hex
Row = dict[str, Any]

# The events columns the trace and lineage views need (never the value bytes).
FLOW_COLUMNS = [
    events.c[name]
    for name in (
        "id", "cluster", "topic", "partition", "offset", "timestamp_ms", "event_id",
        "event_type", "source", "correlation_id", "causation_id", "trace_id", "span_id",
        "is_dlq", "dlq_original_topic", "dlq_original_partition", "dlq_original_offset",
        "dlq_error_class", "dlq_error_message", "dlq_attempts", "value_size",
    )
]  # fmt: skip


# --------------------------------------------------------------------------- writing


def span_row(span: SpanRecord, received_at_ms: int) -> Row:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "service_name": span.service_name,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "duration_ns": span.duration_ns,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "attributes": _json(span.attributes),
        "resource_attributes": _json(span.resource_attributes),
        "events": _json(span.events),
        "links": _json(span.links),
        "trace_state": span.trace_state,
        "scope_name": span.scope_name,
        "scope_version": span.scope_version,
        "dropped_attributes_count": span.dropped_attributes_count,
        "dropped_events_count": span.dropped_events_count,
        "dropped_links_count": span.dropped_links_count,
        "messaging_system": span.messaging_system,
        "messaging_operation": span.messaging_operation,
        "topic": span.topic,
        "partition": span.partition if span.partition is None or span.partition < 2**31 else None,
        "offset": span.offset if span.offset is None or span.offset < 2**63 else None,
        "consumer_group": span.consumer_group,
        "message_key": span.message_key,
        "message_id": span.message_id,
        "batch_count": span.batch_count
        if span.batch_count is None or span.batch_count < 2**63
        else None,
        "received_at_ms": received_at_ms,
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _clamp_ns(value: int) -> int:
    """OTLP times are uint64; the index column is a signed 64-bit integer."""
    return min(max(value, 0), 2**63 - 1)


def store_spans(engine: Engine, spans: Sequence[SpanRecord], received_at_ms: int) -> int:
    """Insert spans and their links in one transaction; return how many spans were new."""
    if not spans:
        return 0
    on_postgresql = engine.dialect.name == "postgresql"
    dialect = postgresql if on_postgresql else sqlite
    # ux_spans_trace_span, or on PostgreSQL ux_spans_trace_span_start (its day partitions)
    unique = ["trace_id", "span_id", *(["start_ns"] if on_postgresql else [])]
    span_insert = (
        dialect.insert(spans_table)
        .on_conflict_do_nothing(index_elements=unique)
        .returning(spans_table.c.id)
    )
    link_insert = dialect.insert(span_links_table).on_conflict_do_nothing(
        index_elements=["trace_id", "span_id", "linked_trace_id", "linked_span_id"]
    )
    rows = []
    for span in spans:
        row = span_row(span, received_at_ms)
        row["start_ns"] = _clamp_ns(span.start_ns)
        row["end_ns"] = _clamp_ns(span.end_ns)
        row["duration_ns"] = _clamp_ns(span.duration_ns)
        rows.append(row)
    links = {
        (span.trace_id, span.span_id, link["trace_id"], link["span_id"])
        for span in spans
        for link in span.links
    }
    inserted = 0
    with engine.begin() as connection:
        for start in range(0, len(rows), 2000):
            result = connection.execute(span_insert, rows[start : start + 2000])
            inserted += len(result.all())
        if links:
            connection.execute(
                link_insert,
                [
                    {"trace_id": t, "span_id": s, "linked_trace_id": lt, "linked_span_id": ls}
                    for t, s, lt, ls in sorted(links)
                ],
            )
        fill_sources(connection, spans)
    return inserted


def fill_sources(connection: Connection, spans: Sequence[SpanRecord]) -> None:
    """The last source convention: a record with no source of its own gets the
    `service.name` of the producer span its traceparent names. One UPDATE per service in
    the batch, through the trace id index. Records indexed after their span arrived keep
    no source (the tap does not look spans up on its hot path)."""
    by_service: dict[str, list[Context]] = {}
    for span in spans:
        if span.service_name and (
            span.kind == KIND_PRODUCER
            or (span.kind in (0, 1, 3) and span.messaging_operation in PRODUCE_OPERATIONS)
        ):
            by_service.setdefault(span.service_name, []).append((span.trace_id, span.span_id))
    c = events.c
    for service, contexts in sorted(by_service.items()):
        for batch in chunked(sorted(set(contexts))):
            connection.execute(
                events.update()
                .where(
                    identity_in("trace_id", [trace for trace, _ in batch]),
                    tuple_(c.trace_id, c.span_id).in_(batch),
                    c.source.is_(None),
                )
                .values(source=service)
            )


# --------------------------------------------------------------------------- reading


def chunked(items: Iterable[Any]) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def fetch_rows(connection: Connection, query: Any) -> list[Row]:
    return [dict(row._mapping) for row in connection.execute(query)]


def _context_condition(
    trace_column: Any, span_column: Any, contexts: Sequence[Context]
) -> ColumnElement[bool]:
    by_trace: dict[str, list[str]] = {}
    for trace_id, span_id in contexts:
        by_trace.setdefault(trace_id, []).append(span_id)
    return or_(*(and_(trace_column == t, span_column.in_(ids)) for t, ids in by_trace.items()))


def is_consumer(span: Mapping[str, Any]) -> bool:
    return span["kind"] == KIND_CONSUMER or (
        span["kind"] in (0, 1) and span["messaging_operation"] in CONSUME_OPERATIONS
    )


def is_producer(span: Mapping[str, Any]) -> bool:
    return span["kind"] == KIND_PRODUCER or (
        span["kind"] in (0, 1, 3) and span["messaging_operation"] in PRODUCE_OPERATIONS
    )


def record_context(record: Mapping[str, Any]) -> Context | None:
    if record.get("trace_id") and record.get("span_id"):
        return record["trace_id"], record["span_id"]
    return None


def spans_by_context(connection: Connection, contexts: Iterable[Context]) -> list[Row]:
    found: list[Row] = []
    for batch in chunked(sorted(set(contexts))):
        condition = _context_condition(spans_table.c.trace_id, spans_table.c.span_id, batch)
        found += fetch_rows(connection, select(spans_table).where(condition))
    return found


def spans_of_traces(connection: Connection, trace_ids: Iterable[str], limit: int) -> list[Row]:
    """Every span of the given traces, oldest first, at most `limit` in all."""
    found: list[Row] = []
    for batch in chunked(sorted(set(trace_ids))):
        query = (
            select(spans_table)
            .where(spans_table.c.trace_id.in_(batch))
            .order_by(spans_table.c.start_ns)
            .limit(limit - len(found) + 1)
        )
        found += fetch_rows(connection, query)
        if len(found) > limit:
            return found[:limit]
    return found


def spans_linking_to(connection: Connection, contexts: Iterable[Context]) -> list[Row]:
    """Spans that carry a span link to one of the contexts (batch consumers)."""
    links = span_links_table.c
    pairs: set[Context] = set()
    for batch in chunked(sorted(set(contexts))):
        condition = _context_condition(links.linked_trace_id, links.linked_span_id, batch)
        query = select(links.trace_id, links.span_id).where(condition)
        pairs.update((t, s) for t, s in connection.execute(query))
    return spans_by_context(connection, pairs)


def spans_at_coordinates(
    connection: Connection, coordinates: Iterable[tuple[str, int, int]]
) -> list[Row]:
    """Spans whose messaging attributes name exactly one of (topic, partition, offset)."""
    c = spans_table.c
    found: list[Row] = []
    for condition in coordinate_conditions(c.topic, c.partition, c.offset, coordinates):
        found += fetch_rows(connection, select(spans_table).where(condition))
    return found


def coordinate_conditions(
    topic: Any, partition: Any, offset: Any, coordinates: Iterable[tuple[str, int, int]]
) -> Iterable[ColumnElement[bool]]:
    """Conditions matching the coordinates, one per batch: offsets are grouped into one IN
    list per (topic, partition), so 500 records of a partition are one index range probe
    and one small expression, not 500 OR-ed terms (which SQLAlchemy is slow to build)."""
    by_partition: dict[tuple[str, int], list[int]] = {}
    for t, p, o in set(coordinates):
        by_partition.setdefault((t, p), []).append(o)
    terms: list[ColumnElement[bool]] = []
    bound = 0  # parameters in `terms`: at most about CHUNK per query
    for (t, p), offsets in sorted(by_partition.items()):
        for batch in chunked(sorted(offsets)):
            if terms and bound + len(batch) + 2 > CHUNK:
                yield or_(*terms)
                terms, bound = [], 0
            terms.append(and_(topic == t, partition == p, offset.in_(batch)))
            bound += len(batch) + 2
    if terms:
        yield or_(*terms)


def events_by_context(connection: Connection, contexts: Iterable[Context]) -> list[Row]:
    """Records whose traceparent names one of the contexts."""
    found: list[Row] = []
    for batch in chunked(sorted(set(contexts))):
        by_trace: dict[str, list[str]] = {}
        for trace_id, span_id in batch:
            by_trace.setdefault(trace_id, []).append(span_id)
        condition = or_(
            *(
                and_(identity_equals("trace_id", trace_id), events.c.span_id.in_(span_ids))
                for trace_id, span_ids in by_trace.items()
            )
        )
        found += fetch_rows(connection, select(*FLOW_COLUMNS).where(condition))
    return found


def events_at_coordinates(
    connection: Connection, coordinates: Iterable[tuple[str, int, int]]
) -> list[Row]:
    c = events.c
    found: list[Row] = []
    for condition in coordinate_conditions(c.topic, c.partition, c.offset, coordinates):
        found += fetch_rows(connection, select(*FLOW_COLUMNS).where(condition))
    return found


def _names_other_record(span: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """The span's own coordinates name a different record than `record`."""
    if span["topic"] is not None and span["topic"] != record["topic"]:
        return True
    if span["partition"] is not None and span["partition"] != record["partition"]:
        return True
    return span["offset"] is not None and span["offset"] != record["offset"]


def processing_spans(connection: Connection, records: Sequence[Row]) -> dict[int, list[Row]]:
    """For each record (by row id), the spans that processed it."""
    by_coordinates: dict[tuple[str, int, int], list[int]] = {}
    by_context: dict[Context, list[Row]] = {}
    for record in records:
        key = (record["topic"], record["partition"], record["offset"])
        by_coordinates.setdefault(key, []).append(record["id"])
        context = record_context(record)
        if context:
            by_context.setdefault(context, []).append(record)
    result: dict[int, dict[Context, Row]] = {record["id"]: {} for record in records}
    for span in spans_at_coordinates(connection, by_coordinates):
        if is_producer(span):
            continue
        for record_id in by_coordinates[(span["topic"], span["partition"], span["offset"])]:
            result[record_id][(span["trace_id"], span["span_id"])] = span
    if by_context:
        children = _consumer_children(connection, list(by_context))
        for span in children:
            for record in by_context.get((span["trace_id"], span["parent_span_id"]), []):
                if not _names_other_record(span, record):
                    result[record["id"]][(span["trace_id"], span["span_id"])] = span
        for span in spans_linking_to(connection, by_context):
            for link in json.loads(span["links"]):
                for record in by_context.get((link["trace_id"], link["span_id"]), []):
                    if span["topic"] is None or span["topic"] == record["topic"]:
                        result[record["id"]][(span["trace_id"], span["span_id"])] = span
    return {record_id: list(spans.values()) for record_id, spans in result.items()}


def _consumer_children(connection: Connection, contexts: Sequence[Context]) -> list[Row]:
    """Consumer spans whose parent is one of the contexts."""
    c = spans_table.c
    found: list[Row] = []
    for batch in chunked(sorted(set(contexts))):
        condition = _context_condition(c.trace_id, c.parent_span_id, batch)
        found += [span for span in fetch_rows(connection, select(spans_table).where(condition))]
    return [span for span in found if is_consumer(span)]


def children_index(spans_in_trace: Sequence[Row]) -> dict[Context, list[Row]]:
    """Spans by their parent context, for `descendants`."""
    children: dict[Context, list[Row]] = {}
    for span in spans_in_trace:
        if span["parent_span_id"]:
            children.setdefault((span["trace_id"], span["parent_span_id"]), []).append(span)
    return children


def descendants(children: Mapping[Context, list[Row]], root: Row) -> list[Row]:
    """The root and the spans below it, stopping at other consumer spans.

    A consumer span below the root processes a record the root's work produced (a
    consumer in another service continuing the trace); what it does is that record's
    lineage, not the root's.
    """
    seen: dict[Context, Row] = {}
    stack = [root]
    while stack:
        span = stack.pop()
        context = (span["trace_id"], span["span_id"])
        if context in seen:
            continue
        seen[context] = span
        stack.extend(child for child in children.get(context, []) if not is_consumer(child))
    return list(seen.values())


def records_produced_by(connection: Connection, spans: Sequence[Row]) -> list[Row]:
    """Records whose traceparent names one of the spans, or that a producer span names."""
    found = {row["id"]: row for row in events_by_context(connection, _contexts(spans))}
    coordinates = [
        (s["topic"], s["partition"], s["offset"])
        for s in spans
        if is_producer(s) and s["topic"] is not None and s["offset"] is not None
        and s["partition"] is not None
    ]  # fmt: skip
    for row in events_at_coordinates(connection, coordinates):
        found.setdefault(row["id"], row)
    return list(found.values())


def _contexts(spans: Iterable[Mapping[str, Any]]) -> list[Context]:
    return [(span["trace_id"], span["span_id"]) for span in spans]


def consumed_by(connection: Connection, span: Mapping[str, Any]) -> list[Row]:
    """The records a consumer span processed: by coordinates, parent context or links."""
    found: dict[int, Row] = {}
    if span["topic"] is not None and span["partition"] is not None and span["offset"] is not None:
        for row in events_at_coordinates(
            connection, [(span["topic"], span["partition"], span["offset"])]
        ):
            found[row["id"]] = row
    contexts: list[Context] = []
    if span["parent_span_id"]:
        contexts.append((span["trace_id"], span["parent_span_id"]))
    contexts += [(link["trace_id"], link["span_id"]) for link in json.loads(span["links"])]
    for row in events_by_context(connection, contexts):
        if span["topic"] is not None and span["topic"] != row["topic"]:
            continue
        parent_only = record_context(row) == (span["trace_id"], span["parent_span_id"])
        if parent_only and _names_other_record(span, row):
            continue
        found.setdefault(row["id"], row)
    return list(found.values())


def producing_chain(spans_in_trace: Sequence[Row], start: Row) -> list[Row]:
    """`start` and its ancestors up to (and including) the nearest consumer span."""
    by_context = {(span["trace_id"], span["span_id"]): span for span in spans_in_trace}
    chain: list[Row] = []
    span: Row | None = start
    seen: set[Context] = set()
    while span is not None:
        context = (span["trace_id"], span["span_id"])
        if context in seen:  # a hostile exporter may send a parent cycle
            break
        seen.add(context)
        chain.append(span)
        if is_consumer(span) or not span["parent_span_id"]:
            break
        span = by_context.get((span["trace_id"], span["parent_span_id"]))
    return chain


# --------------------------------------------------------------------------- one flow

MAX_FLOW_EVENTS = 2_000
MAX_FLOW_SPANS = 5_000
_HEX32 = frozenset("0123456789abcdef")


@dataclass
class Flow:
    """Every record and span of one flow, found from a correlation, event or trace id."""

    reference: str
    matched_by: str  # "correlation_id", "event_id", "trace_id" or "" when nothing matched
    events: list[Row] = field(default_factory=list)
    spans: list[Row] = field(default_factory=list)
    truncated: bool = False


def looks_like_trace_id(reference: str) -> bool:
    return len(reference) == 32 and set(reference.lower()) <= _HEX32


def collect_flow(engine: Engine, reference: str) -> Flow:
    """Resolve `reference` (correlation id, event id or trace id) and gather its flow.

    Records with the correlation id (or the event, widened to its correlation id), the
    spans of every trace those records belong to, batch consumer spans linking into them
    (and their traces), and the records produced in all those traces.
    """
    with engine.connect() as connection:
        found: dict[int, Row] = {}
        traces_wanted: set[str] = set()
        matched_by = ""

        def add_events(query: Any) -> None:
            for row in fetch_rows(connection, query.limit(MAX_FLOW_EVENTS + 1 - len(found))):
                found.setdefault(row["id"], row)

        if looks_like_trace_id(reference):
            traces_wanted.add(reference.lower())
            add_events(select(*FLOW_COLUMNS).where(identity_equals("trace_id", reference.lower())))
            matched_by = "trace_id"
        if not found:
            add_events(select(*FLOW_COLUMNS).where(identity_equals("correlation_id", reference)))
            matched_by = "correlation_id" if found else matched_by
        if not found:
            add_events(select(*FLOW_COLUMNS).where(identity_equals("event_id", reference)))
            correlations = {row["correlation_id"] for row in found.values()} - {None}
            if found:
                matched_by = "event_id"
            if correlations:
                add_events(select(*FLOW_COLUMNS).where(identity_in("correlation_id", correlations)))
        traces_wanted |= {row["trace_id"] for row in found.values() if row["trace_id"]}
        spans = spans_of_traces(connection, traces_wanted, MAX_FLOW_SPANS)
        contexts = _contexts(spans) + [ctx for r in found.values() if (ctx := record_context(r))]
        linked_traces = {s["trace_id"] for s in spans_linking_to(connection, contexts)}
        if linked_traces - traces_wanted:
            traces_wanted |= linked_traces
            spans = spans_of_traces(connection, traces_wanted, MAX_FLOW_SPANS)
        if matched_by == "" and spans:
            matched_by = "trace_id"
        for batch in chunked(sorted(traces_wanted)):
            if len(found) > MAX_FLOW_EVENTS:
                break
            add_events(select(*FLOW_COLUMNS).where(identity_in("trace_id", batch)))
    truncated = len(found) > MAX_FLOW_EVENTS or len(spans) >= MAX_FLOW_SPANS
    ordered = sorted(found.values(), key=lambda r: (r["timestamp_ms"], r["id"]))
    return Flow(reference, matched_by, ordered[:MAX_FLOW_EVENTS], spans, truncated)
