"""Spans in the index and the span <-> record linking, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from collectors import traces
from collectors.index.trace_models import span_links_table, spans_table
from tests.collectors.trace_fixtures import event_row, index_rows, span

T1 = "a" * 32
T2 = "b" * 32


def test_spans_are_stored_once_with_links_and_coordinates(index_db) -> None:
    engine = index_db.engine
    batch = [
        span(T1, "1" * 16, kind=4, service="orders", topic="orders", partition=0),
        span(T2, "2" * 16, kind=5, service="billing", links=[(T1, "1" * 16)], topic="orders",
             partition=0, offset=7, consumer_group="billing"),
    ]  # fmt: skip
    batch[1].end_ns = 2**64 - 1  # uint64 from the wire must still fit the column
    assert traces.store_spans(engine, batch, 1) == 2
    assert traces.store_spans(engine, batch, 2) == 0  # an exporter retry adds nothing
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(spans_table)).scalar() == 2
        links = connection.execute(select(span_links_table)).mappings().all()
        assert [(r["trace_id"], r["linked_span_id"]) for r in links] == [(T2, "1" * 16)]
        stored = traces.spans_by_context(connection, [(T2, "2" * 16)])[0]
    assert stored["service_name"] == "billing"
    assert (stored["topic"], stored["partition"], stored["offset"]) == ("orders", 0, 7)
    assert stored["end_ns"] == 2**63 - 1
    assert stored["resource_attributes"] == '{"service.name":"billing"}'


def test_processing_spans_by_coordinates_parent_and_link(index_db) -> None:
    engine = index_db.engine
    producer = "1" * 16
    index_rows(engine, [
        event_row("orders", 0, trace_id=T1, span_id=producer),
        event_row("orders", 1, trace_id=T1, span_id=producer),
        event_row("audit", 0, trace_id=T1, span_id=producer),
    ])  # fmt: skip
    traces.store_spans(engine, [
        # a consumer naming the exact record it processed
        span(T1, "3" * 16, parent=producer, kind=5, topic="orders", partition=0, offset=1),
        # a consumer with only the parent context, on another topic: processed "audit"
        span(T1, "4" * 16, parent=producer, kind=5, topic="audit"),
        # a batch consumer linking to the producer context
        span(T2, "5" * 16, kind=5, links=[(T1, producer)], topic="orders"),
        # the producer span itself never counts as processing
        span(T1, producer, kind=4, topic="orders", partition=0, offset=0),
    ], 0)  # fmt: skip
    with engine.connect() as connection:
        rows = traces.events_by_context(connection, [(T1, producer)])
        by_place = {(r["topic"], r["offset"]): r for r in rows}
        processing = traces.processing_spans(connection, rows)
    names = {
        key: sorted(s["span_id"][0] for s in processing[r["id"]]) for key, r in by_place.items()
    }
    assert names == {("orders", 0): ["5"], ("orders", 1): ["3", "5"], ("audit", 0): ["4"]}


def test_collect_flow_finds_a_correlation_and_the_batch_consumer_trace(index_db) -> None:
    engine = index_db.engine
    index_rows(engine, [
        event_row("orders", 0, ts_ms=0, correlation_id="order-42", event_id="e-1",
                  trace_id=T1, span_id="1" * 16),
        event_row("shipments", 0, ts_ms=30, trace_id=T2, span_id="6" * 16),
        event_row("other", 0, ts_ms=5, correlation_id="order-43"),
    ])  # fmt: skip
    traces.store_spans(engine, [
        span(T1, "1" * 16, kind=4, service="orders"),
        span(T2, "5" * 16, kind=5, service="shipping", links=[(T1, "1" * 16)], start_ms=20),
        span(T2, "6" * 16, parent="5" * 16, kind=4, service="shipping", start_ms=25),
    ], 0)  # fmt: skip
    flow = traces.collect_flow(engine, "order-42")
    assert flow.matched_by == "correlation_id"
    assert [r["topic"] for r in flow.events] == ["orders", "shipments"]
    assert {s["span_id"][0] for s in flow.spans} == {"1", "5", "6"}
    by_event = traces.collect_flow(engine, "e-1")
    assert by_event.matched_by == "event_id" and len(by_event.events) == 2
    by_trace = traces.collect_flow(engine, T2.upper())
    assert by_trace.matched_by == "trace_id"
    assert [r["topic"] for r in by_trace.events] == ["shipments"]
    assert traces.collect_flow(engine, "nothing").matched_by == ""


def test_a_producer_span_names_the_source_of_the_records_it_produced(index_db) -> None:
    """docs/conventions.md: the producer span's service.name is the last source fallback."""
    from console.stores.events import EventFilter, search_events

    engine = index_db.engine
    index_rows(engine, [
        event_row("checkout", 0, trace_id=T1, span_id="1" * 16),
        event_row("checkout", 1, trace_id=T1, span_id="2" * 16, source="own-header"),
        event_row("checkout", 2, trace_id=T2, span_id="3" * 16),
    ])  # fmt: skip
    traces.store_spans(engine, [
        span(T1, "1" * 16, kind=4, service="js-checkout"),
        span(T1, "2" * 16, kind=4, service="js-checkout"),
        span(T2, "3" * 16, kind=5, service="billing"),  # a consumer produced nothing
    ], 1)  # fmt: skip
    found = search_events(engine, EventFilter(source="js-checkout")).events
    assert [e["offset"] for e in found] == [0]
    assert [
        e["offset"] for e in search_events(engine, EventFilter(source="own-header")).events
    ] == [1]
    assert search_events(engine, EventFilter(source="billing")).events == []
