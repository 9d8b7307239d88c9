"""Event search on both index backends (rows written the way the tap writes them)."""

from __future__ import annotations

import pytest

from collectors.config import SchemaFileConfig, TopicSchemasConfig
from collectors.conventions import Conventions, RawRecord, normalize
from collectors.index.writer import write_batch
from collectors.kafka.tap import to_row
from collectors.schemas.decoding import RecordDecoder
from console.stores.events import (
    EventFilter,
    SearchError,
    encode_cursor,
    get_event,
    newer_than,
    parse_filter,
    search_events,
)

CONVENTIONS = Conventions()


def index_records(engine, topic: str, records: list[tuple]) -> None:
    """records: (partition, offset, timestamp_ms, key, value, headers)."""
    rows = [
        to_row("local", normalize(RawRecord(topic, p, o, ts, k, v, h), CONVENTIONS), ts)
        for p, o, ts, k, v, h in records
    ]
    write_batch(engine, "local", rows, {}, 0)


@pytest.fixture
def populated(index_db):
    index_records(
        index_db.engine,
        "orders",
        [
            (
                0,
                0,
                1_000,
                b"order-1",
                b'{"orderId": 1, "note": "gift wrap"}',
                [("x-correlation-id", b"corr-1"), ("ce_type", b"OrderPlaced"), ("tenant", b"acme")],
            ),
            (
                0,
                1,
                2_000,
                b"order-2",
                b'{"orderId": 2}',
                [
                    ("x-correlation-id", b"corr-2"),
                    ("ce_type", b"OrderPlaced"),
                    ("tenant", b"globex"),
                ],
            ),
            (
                1,
                0,
                3_000,
                b"order-1",
                b'{"orderId": 1, "status": "paid"}',
                [
                    ("x-correlation-id", b"corr-1"),
                    ("ce_type", b"OrderPaid"),
                    ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ],
            ),
        ],
    )
    index_records(
        index_db.engine,
        "payments",
        [
            (
                0,
                0,
                2_500,
                b"pay-1",
                b'{"amount": 10}',
                [
                    ("x-correlation-id", b"corr-1"),
                    ("ce_id", b"evt-pay-1"),
                    ("ce_source", b"billing"),
                ],
            ),
        ],
    )
    index_records(
        index_db.engine,
        "orders.DLT",
        [
            (0, 0, 4_000, b"order-9", b"{}", [("kafka_dlt-original-topic", b"orders")]),
        ],
    )
    return index_db.engine


def coordinates(result) -> list[tuple[str, int, int]]:
    return [(e["topic"], e["partition"], e["offset"]) for e in result.events]


def test_correlation_id_finds_events_across_topics_newest_first(populated) -> None:
    result = search_events(populated, EventFilter(correlation_id="corr-1"))
    assert coordinates(result) == [("orders", 1, 0), ("payments", 0, 0), ("orders", 0, 0)]


def test_identity_key_and_type_filters(populated) -> None:
    assert coordinates(search_events(populated, EventFilter(event_id="evt-pay-1"))) == [
        ("payments", 0, 0)
    ]
    trace = search_events(populated, EventFilter(trace_id="0af7651916cd43dd8448eb211c80319c"))
    assert coordinates(trace) == [("orders", 1, 0)]
    by_key = search_events(populated, EventFilter(key="order-1"))
    assert coordinates(by_key) == [("orders", 1, 0), ("orders", 0, 0)]
    by_type = search_events(populated, EventFilter(event_type="OrderPlaced", topics=("orders",)))
    assert coordinates(by_type) == [("orders", 0, 1), ("orders", 0, 0)]
    assert coordinates(search_events(populated, EventFilter(source="billing"))) == [
        ("payments", 0, 0)
    ]


def test_time_offset_partition_and_dlq_filters(populated) -> None:
    window = search_events(populated, EventFilter(time_from_ms=2_000, time_to_ms=3_000))
    assert coordinates(window) == [("orders", 1, 0), ("payments", 0, 0), ("orders", 0, 1)]
    offsets = search_events(
        populated, EventFilter(topics=("orders",), partition=0, offset_from=1, offset_to=5)
    )
    assert coordinates(offsets) == [("orders", 0, 1)]
    dlq = search_events(populated, EventFilter(dlq_only=True))
    assert coordinates(dlq) == [("orders.DLT", 0, 0)]
    assert dlq.events[0]["dlq_original_topic"] == "orders"


def test_payload_text_and_header_filters(populated) -> None:
    assert coordinates(search_events(populated, EventFilter(text="gift wrap"))) == [
        ("orders", 0, 0)
    ]
    assert search_events(populated, EventFilter(text="100%_")).events == []
    tenant = search_events(populated, EventFilter(header_name="tenant"))
    assert coordinates(tenant) == [("orders", 0, 1), ("orders", 0, 0)]
    acme = search_events(populated, EventFilter(header_name="TENANT", header_value="acme"))
    assert coordinates(acme) == [("orders", 0, 0)]


def test_payload_field_filter_on_json_and_on_decoded_records(populated, tmp_path) -> None:
    def found(**kwargs) -> list[tuple[str, int, int]]:
        return coordinates(search_events(populated, EventFilter(**kwargs)))

    assert found(json_path="$.orderId", json_value="1") == [("orders", 1, 0), ("orders", 0, 0)]
    assert found(json_path="$.orderId", json_value="1.0", topics=("orders",)) == [
        ("orders", 1, 0),
        ("orders", 0, 0),
    ]
    assert found(json_path="$.status") == [("orders", 1, 0)]
    assert found(json_path="$.status", json_value="paid") == [("orders", 1, 0)]
    assert found(json_path="$.note", json_value="gift") == []  # equal, not contains
    # An Avro record (decoded with a schema file here) is searched by its decoded fields.
    schema = tmp_path / "order.avsc"
    schema.write_text(
        '{"type": "record", "name": "O", "fields": [{"name": "meta", "type": {"type": '
        '"record", "name": "M", "fields": [{"name": "correlationId", "type": "string"}]}}]}'
    )
    decoder = RecordDecoder(None, {"avro-orders": TopicSchemasConfig(value=SchemaFileConfig(
        avro=str(schema)))})  # fmt: skip
    avro_value = b"\x0ecorr-av"  # the string "corr-av", Avro's binary encoding
    raw = RawRecord("avro-orders", 0, 0, 6_000, None, avro_value, [])
    write_batch(populated, "local", [to_row("local", normalize(raw, CONVENTIONS, decoder), 1)],
                {}, 0)  # fmt: skip
    assert found(json_path="$.meta.correlationId", json_value="corr-av") == [("avro-orders", 0, 0)]
    assert coordinates(search_events(populated, EventFilter(text="corr-av"))) == [
        ("avro-orders", 0, 0)
    ]
    newest = max(e["id"] for e in search_events(populated, EventFilter()).events)
    tail = newer_than(populated, EventFilter(json_path="$.meta.correlationId"), newest - 1)
    assert [(r["topic"], r["offset"]) for r in tail] == [("avro-orders", 0)]
    assert "value" not in tail[0] and "decoded_value" not in tail[0]


def test_cursor_pagination_walks_every_event_once(populated) -> None:
    seen = []
    f = EventFilter(limit=2)
    while True:
        result = search_events(populated, f)
        seen += coordinates(result)
        if result.next_cursor is None:
            break
        f = EventFilter(limit=2, cursor=result.next_cursor)
    assert len(seen) == 5 and len(set(seen)) == 5


def test_text_search_reports_its_scan_cap(populated) -> None:
    result = search_events(populated, EventFilter(text="orderId"), text_scan_rows=2)
    assert result.scan_capped_at == 2
    assert len(result.events) <= 2


def test_event_detail_and_live_tail(populated) -> None:
    row = get_event(populated, "local", "orders", 0, 0)
    assert row is not None and row["value"].startswith(b'{"orderId": 1')
    assert get_event(populated, "local", "orders", 9, 9) is None
    newest = max(e["id"] for e in search_events(populated, EventFilter()).events)
    index_records(populated, "orders", [(0, 2, 5_000, b"order-3", b"{}", [])])
    fresh = newer_than(populated, EventFilter(topics=("orders",)), newest)
    assert [(r["topic"], r["offset"]) for r in fresh] == [("orders", 2)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"partition": "x"}, "partition"),
        ({"offset_from": "-1"}, "offset_from"),
        ({"time_from": "yesterday"}, "time_from"),
        ({"cursor": "!!!"}, "cursor"),
        ({"correlation_id": "a" * 2000}, "correlation_id"),
        ({"text": "nul\x00"}, "text"),
        ({"json_path": "orderId"}, "json_path"),
        ({"json_path": "$.a..b"}, "json_path"),
    ],
)
def test_bad_filters_are_rejected_with_the_field_named(params, field) -> None:
    with pytest.raises(SearchError) as error:
        parse_filter(params)
    assert error.value.field == field


def test_filter_round_trips_through_query_parameters() -> None:
    f = parse_filter({"topic": "a, b", "time_from": "2026-11-29T14:00:00Z", "dlq_only": "1"})
    assert f.topics == ("a", "b") and f.time_from_ms == 1_795_960_800_000 and f.dlq_only
    assert parse_filter(f.query_args()) == f


@pytest.mark.parametrize(
    "f",
    [
        EventFilter(cluster="local", correlation_id="order-1"),
        EventFilter(cluster="local", topics=("orders",), partition=0, event_id="e-1"),
        EventFilter(cluster="local", key="k-1", time_from_ms=0, time_to_ms=10**13),
        EventFilter(trace_id="ab" * 16, offset_from=0, dlq_only=True, text="x"),
        EventFilter(cluster="local", correlation_id="order-1", cursor=encode_cursor(5, 7)),
    ],
    ids=["cluster", "topic-partition", "time-range", "offset-dlq-text", "next-page"],
)
def test_a_look_up_with_other_filters_reads_through_its_hash_index(tmp_path, f) -> None:
    """SQLite plans without statistics: beside a key or identity filter, a cluster, topic,
    time range, row-id bound or cursor must not make it walk another index instead."""
    from sqlalchemy import event

    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    engine = create_index_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate.upgrade(engine)
    statements: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(connection, cursor, statement, parameters, context, executemany) -> None:
        if "event_segments" in statement:
            statements.append((statement, parameters))

    search_events(engine, f, text_scan_rows=0)
    event.remove(engine, "before_cursor_execute", capture)
    assert statements
    with engine.connect() as connection:
        for statement, parameters in statements:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plan = " | ".join(row[-1] for row in rows)
            assert plan.startswith("SEARCH events USING INDEX ix_events_"), plan
            assert "_hash (<expr>=? AND " in plan.split(" | ")[0], plan
    engine.dispose()


def test_looks_up_names_the_filters_that_use_a_hash_index() -> None:
    assert not EventFilter(cluster="c", topics=("t",), text="x").looks_up
    for name in ("key", "correlation_id", "event_id", "trace_id"):
        assert EventFilter(**{name: "v"}).looks_up
