"""Lineage between events: what caused a record, and what it caused.

Edge kinds, strongest first:

* `causation`   — the child's causation id is the parent's event id.
* `trace`       — the parent record was consumed by spans whose descendants produced the
                  child (traceparent, messaging coordinates and span links, see
                  collectors/traces.py); the edge names the service that did it.
* `dead-letter` — the child is a DLQ record whose original coordinates are the parent.
* `correlation` — weaker: the next record with the same correlation id, in time order. It
                  is only drawn from a record that has no stronger edge in that direction
                  and only to a record not yet in the graph, so it fills gaps in
                  uninstrumented flows instead of cluttering instrumented ones.

Edges are computed at query time and not materialized. Every step is a look-up by an
indexed column (event id, causation id, trace id, coordinates, span links), batched into
IN lists: one query per kind of step and per breadth-first level, not per event (the
correlation step reads each correlation id's neighbourhood once), and a graph is capped
at `max_nodes`; that is fast for one flow at tens of millions of rows. An index without
spans skips the trace steps. Materializing would have to reconcile spans and
records arriving in any order (spans are often exported seconds after the record is
indexed, or never), would need a backfill on every rule change and would duplicate what
the identity indexes already answer.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from collectors import traces
from collectors.index.identity import identity_equals, identity_in
from collectors.index.models import EVENTS_IS_DLQ
from collectors.index.models import events_table as events
from collectors.index.trace_models import spans_table
from collectors.traces import FLOW_COLUMNS, Row

DEFAULT_MAX_NODES = 500
MAX_NODES = 5_000
MAX_DEPTH = 1_000
MAX_TRACE_SPANS = 20_000
EDGE_KINDS = ("causation", "trace", "dead-letter", "correlation")
CORRELATION_WINDOW = 2_000  # rows of one correlation id read per breadth-first level


def dead_letters_since(since_ms: int) -> ColumnElement[bool]:
    """DLQ records with a timestamp from `since_ms` on, read through ix_events_dlq.

    `timestamp_ms + 0` is a bound SQLite cannot use ix_events_timestamp for: without
    statistics it would rather range-scan every record of the period than the few DLQ
    records of the partial index.
    """
    return and_(EVENTS_IS_DLQ, events.c.timestamp_ms + 0 >= since_ms)


Direction = Literal["up", "down"]


@dataclass(frozen=True)
class Edge:
    source: int  # events.id of the cause
    target: int  # events.id of the effect
    kind: str
    via: str | None = None  # the service (or span name) that turned source into target


@dataclass
class LineageGraph:
    root: int
    nodes: dict[int, Row] = field(default_factory=dict)
    layers: dict[int, int] = field(default_factory=dict)  # node -> layer, root is 0
    edges: dict[tuple[int, int, str], Edge] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # node -> why it counts as failed
    truncated: bool = False
    has_spans: bool = True  # False: the index holds no spans, the trace steps are skipped
    processing: dict[int, list[Row]] = field(default_factory=dict)  # node -> its consumer spans

    def add_edge(self, edge: Edge) -> None:
        self.edges.setdefault((edge.source, edge.target, edge.kind), edge)


@dataclass
class _Step:
    """What one breadth-first level found: (neighbour row, edge) pairs."""

    found: list[tuple[Row, Edge]] = field(default_factory=list)


def event_by_id(engine: Engine, row_id: int) -> Row | None:
    with engine.connect() as connection:
        row = connection.execute(select(*FLOW_COLUMNS).where(events.c.id == row_id)).first()
    return dict(row._mapping) if row else None


def lineage(
    engine: Engine, root: Mapping[str, Any], max_nodes: int = DEFAULT_MAX_NODES
) -> LineageGraph:
    """The upstream and downstream lineage of one event (a row with FLOW_COLUMNS)."""
    max_nodes = max(1, min(max_nodes, MAX_NODES))
    graph = LineageGraph(root=root["id"])
    graph.nodes[root["id"]] = dict(root)
    graph.layers[root["id"]] = 0
    with engine.connect() as connection:
        graph.has_spans = connection.execute(select(spans_table.c.id).limit(1)).first() is not None
        for direction in ("up", "down"):
            _walk(connection, graph, direction, max_nodes)
        _mark_failed(connection, graph)
    return graph


def _walk(connection: Connection, graph: LineageGraph, direction: Direction, cap: int) -> None:
    frontier = [graph.nodes[graph.root]]
    step = -1 if direction == "up" else 1
    layer = 0
    while frontier and abs(layer) < MAX_DEPTH:
        layer += step
        found = _neighbours(connection, frontier, direction, graph)
        next_frontier: list[Row] = []
        for row, edge in found:
            if row["id"] not in graph.nodes:
                if len(graph.nodes) >= cap:
                    graph.truncated = True
                    continue
                graph.nodes[row["id"]] = row
                graph.layers[row["id"]] = layer
                next_frontier.append(row)
            graph.add_edge(edge)
        frontier = next_frontier
    if frontier:
        graph.truncated = True  # stopped by depth, not by running out of neighbours


def _neighbours(
    connection: Connection, frontier: Sequence[Row], direction: Direction, graph: LineageGraph
) -> list[tuple[Row, Edge]]:
    if direction == "down":
        strong = _causation_down(connection, frontier) + _dead_letter_down(connection, frontier)
        if graph.has_spans:
            strong += _trace_down(connection, frontier, graph)
    else:
        strong = _causation_up(connection, frontier) + _dead_letter_up(connection, frontier)
        if graph.has_spans:
            strong += _trace_up(connection, frontier)
    strong = [(row, edge) for row, edge in strong if edge.source != edge.target]
    linked = {edge.source if direction == "down" else edge.target for _, edge in strong}
    lonely = [row for row in frontier if row["id"] not in linked and row["correlation_id"]]
    weak = [
        (row, edge)
        for row, edge in _correlation_neighbours(connection, lonely, direction)
        if row["id"] not in graph.nodes
    ]
    return strong + weak


# --------------------------------------------------------------------------- causation


def _causation_down(connection: Connection, frontier: Sequence[Row]) -> list[tuple[Row, Edge]]:
    by_event_id: dict[str, list[Row]] = {}
    for row in frontier:
        if row["event_id"]:
            by_event_id.setdefault(row["event_id"], []).append(row)
    found = []
    for batch in traces.chunked(sorted(by_event_id)):
        query = select(*FLOW_COLUMNS).where(identity_in("causation_id", batch))
        for child in traces.fetch_rows(connection, query):
            for parent in by_event_id[child["causation_id"]]:
                found.append((child, Edge(parent["id"], child["id"], "causation")))
    return found


def _causation_up(connection: Connection, frontier: Sequence[Row]) -> list[tuple[Row, Edge]]:
    by_cause: dict[str, list[Row]] = {}
    for row in frontier:
        if row["causation_id"]:
            by_cause.setdefault(row["causation_id"], []).append(row)
    found = []
    for batch in traces.chunked(sorted(by_cause)):
        query = select(*FLOW_COLUMNS).where(identity_in("event_id", batch))
        for parent in traces.fetch_rows(connection, query):
            for child in by_cause[parent["event_id"]]:
                found.append((parent, Edge(parent["id"], child["id"], "causation")))
    return found


# --------------------------------------------------------------------------- trace


def _processing(connection: Connection, graph: LineageGraph, rows: Sequence[Row]) -> None:
    """Look up the consumer spans of the rows not looked up yet (kept for _mark_failed)."""
    missing = [row for row in rows if row["id"] not in graph.processing]
    if missing and graph.has_spans:
        graph.processing.update(traces.processing_spans(connection, missing))
    for row in missing:
        graph.processing.setdefault(row["id"], [])


def _trace_down(
    connection: Connection, frontier: Sequence[Row], graph: LineageGraph
) -> list[tuple[Row, Edge]]:
    _processing(connection, graph, frontier)
    processing = graph.processing
    consumers = [span for spans in processing.values() for span in spans]
    if not consumers:
        return []
    in_traces = traces.spans_of_traces(
        connection, {span["trace_id"] for span in consumers}, MAX_TRACE_SPANS
    )
    children = traces.children_index(in_traces)
    found = []
    for record in frontier:
        for consumer in processing.get(record["id"], ()):
            below = traces.descendants(children, consumer)
            for child in traces.records_produced_by(connection, below):
                via = consumer["service_name"] or consumer["name"]
                found.append((child, Edge(record["id"], child["id"], "trace", via)))
    return found


def _trace_up(connection: Connection, frontier: Sequence[Row]) -> list[tuple[Row, Edge]]:
    contexts = {ctx for row in frontier if (ctx := traces.record_context(row))}
    if not contexts:
        return []
    producers = {
        (span["trace_id"], span["span_id"]): span
        for span in traces.spans_by_context(connection, contexts)
    }
    if not producers:
        return []
    in_traces = traces.spans_of_traces(
        connection, {trace_id for trace_id, _ in producers}, MAX_TRACE_SPANS
    )
    found = []
    for record in frontier:
        context = traces.record_context(record)
        start = producers.get(context) if context else None
        if start is None:
            continue
        consumer = traces.producing_chain(in_traces, start)[-1]
        if not traces.is_consumer(consumer):
            continue
        via = consumer["service_name"] or consumer["name"]
        for parent in traces.consumed_by(connection, consumer):
            found.append((parent, Edge(parent["id"], record["id"], "trace", via)))
    return found


# --------------------------------------------------------------------------- dead letters


def _dead_letter_down(connection: Connection, frontier: Sequence[Row]) -> list[tuple[Row, Edge]]:
    wanted = {(r["topic"], r["partition"], r["offset"]): r for r in frontier if not r["is_dlq"]}
    if not wanted:
        return []
    c = events.c
    earliest = min(r["timestamp_ms"] for r in wanted.values())
    found = []
    for batch in traces.chunked(sorted({topic for topic, _, _ in wanted})):
        query = select(*FLOW_COLUMNS).where(
            dead_letters_since(earliest), c.dlq_original_topic.in_(batch)
        )
        for child in traces.fetch_rows(connection, query):
            key = (child["dlq_original_topic"], child["dlq_original_partition"],
                   child["dlq_original_offset"])  # fmt: skip
            parent = wanted.get(key)
            if parent is not None and parent["cluster"] == child["cluster"]:
                found.append((child, Edge(parent["id"], child["id"], "dead-letter")))
    return found


def _dead_letter_up(connection: Connection, frontier: Sequence[Row]) -> list[tuple[Row, Edge]]:
    children: dict[tuple[str, int, int], list[Row]] = {}
    for child in frontier:
        key = (child["dlq_original_topic"], child["dlq_original_partition"],
               child["dlq_original_offset"])  # fmt: skip
        if child["is_dlq"] and None not in key:
            children.setdefault(key, []).append(child)
    if not children:
        return []
    c = events.c
    found = []
    for condition in traces.coordinate_conditions(c.topic, c.partition, c.offset, children):
        for parent in traces.fetch_rows(connection, select(*FLOW_COLUMNS).where(condition)):
            for child in children[(parent["topic"], parent["partition"], parent["offset"])]:
                if child["cluster"] == parent["cluster"]:
                    found.append((parent, Edge(parent["id"], child["id"], "dead-letter")))
    return found


# --------------------------------------------------------------------------- correlation


def _order(row: Row) -> tuple[int, int]:
    return row["timestamp_ms"], row["id"]


def _correlation_neighbours(
    connection: Connection, lonely: Sequence[Row], direction: Direction
) -> list[tuple[Row, Edge]]:
    """For each row, the next (down) or previous (up) record with its correlation id.

    One query per correlation id reads the rows after the earliest (before the latest)
    lonely row, up to CORRELATION_WINDOW of them; each row's neighbour is found in them by
    bisection. Only a row whose neighbour lies past a full window costs a query of its own.
    """
    by_correlation: dict[str, list[Row]] = {}
    for row in lonely:
        by_correlation.setdefault(row["correlation_id"], []).append(row)
    found = []
    for correlation_id, rows in by_correlation.items():
        edge = min(rows, key=_order) if direction == "down" else max(rows, key=_order)
        around = _correlation_rows(connection, correlation_id, edge, direction, CORRELATION_WINDOW)
        full = len(around) >= CORRELATION_WINDOW
        if direction == "up":
            around.reverse()
        keys = [_order(other) for other in around]
        for row in rows:
            if direction == "down":
                at = bisect_right(keys, _order(row))
                other = around[at] if at < len(around) else None
            else:
                at = bisect_left(keys, _order(row)) - 1
                other = around[at] if at >= 0 else None
            if other is None and full:
                other = next(iter(_correlation_rows(connection, correlation_id, row, direction, 1)),
                             None)  # fmt: skip
            if other is not None:
                source, target = (row, other) if direction == "down" else (other, row)
                found.append((other, Edge(source["id"], target["id"], "correlation")))
    return found


def _correlation_rows(
    connection: Connection, correlation_id: str, row: Row, direction: Direction, limit: int
) -> list[Row]:
    """Rows with this correlation id after (down) or before (up) `row`, nearest first."""
    c = events.c
    same = identity_equals("correlation_id", correlation_id)
    if direction == "down":
        later = or_(
            c.timestamp_ms > row["timestamp_ms"],
            and_(c.timestamp_ms == row["timestamp_ms"], c.id > row["id"]),
        )
        query = select(*FLOW_COLUMNS).where(same, later).order_by(c.timestamp_ms, c.id)
    else:
        earlier = or_(
            c.timestamp_ms < row["timestamp_ms"],
            and_(c.timestamp_ms == row["timestamp_ms"], c.id < row["id"]),
        )
        query = (
            select(*FLOW_COLUMNS).where(same, earlier).order_by(c.timestamp_ms.desc(), c.id.desc())
        )
    return traces.fetch_rows(connection, query.limit(limit))


# --------------------------------------------------------------------------- failures


def _mark_failed(connection: Connection, graph: LineageGraph) -> None:
    """A node failed when it is a DLQ record, or a span that processed it has error status."""
    for row_id, row in graph.nodes.items():
        if row["is_dlq"]:
            graph.failed[row_id] = "dead letter: " + (row["dlq_error_class"] or "unknown error")
    _processing(connection, graph, list(graph.nodes.values()))
    for row_id, spans in graph.processing.items():
        if row_id not in graph.nodes:
            continue
        for span in spans:
            if span["status_code"] == traces.STATUS_ERROR and row_id not in graph.failed:
                who = span["service_name"] or span["name"]
                graph.failed[row_id] = f"processing failed in {who}: {span['status_message'] or ''}"


def flow_row_at(
    engine: Engine, cluster: str, topic: str, partition: int, offset: int
) -> Row | None:
    """The event at these coordinates, with the columns a lineage graph reads."""
    c = events.c
    query = select(*FLOW_COLUMNS).where(
        c.cluster == cluster, c.topic == topic, c.partition == partition, c.offset == offset
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return dict(row._mapping) if row else None


def flow_rows_with_event_id(engine: Engine, event_id: str, limit: int = 20) -> list[Row]:
    """Events that carry this event id (several when producers reuse ids)."""
    query = select(*FLOW_COLUMNS).where(identity_equals("event_id", event_id)).limit(limit)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
