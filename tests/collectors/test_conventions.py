import base64
import json
import random
import struct
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from collectors.conventions import (
    Conventions,
    NormalizedEvent,
    RawRecord,
    is_dlq_topic,
    normalize,
    parse_traceparent,
)

DEFAULTS = Conventions()
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def record(
    headers: Sequence[tuple[str, bytes | None]] | None = None,
    value: bytes | None = b"hello",
    *,
    topic: str = "orders",
    key: bytes | None = b"k1",
) -> RawRecord:
    return RawRecord(
        topic=topic,
        partition=3,
        offset=42,
        timestamp_ms=1_714_564_800_000,
        key=key,
        value=value,
        headers=headers or [],
    )


def norm(
    headers: Sequence[tuple[str, bytes | None]] | None = None,
    value: bytes | None = b"hello",
    conventions: Conventions = DEFAULTS,
    **kwargs: Any,
) -> NormalizedEvent:
    return normalize(record(headers, value, **kwargs), conventions)


def as_json(document: Any) -> bytes:
    return json.dumps(document).encode()


# --- identity from headers and JSON ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("ce_id", "event_id"),
        ("event_id", "event_id"),
        ("eventId", "event_id"),
        ("message_id", "event_id"),
        ("x-event-id", "event_id"),
        ("ce_type", "event_type"),
        ("event_type", "event_type"),
        ("type", "event_type"),
        ("ce_source", "source"),
        ("service", "source"),
        ("producer", "source"),
        ("correlation_id", "correlation_id"),
        ("correlationId", "correlation_id"),
        ("X-Correlation-ID", "correlation_id"),
        ("x-request-id", "correlation_id"),
        ("ce_correlationid", "correlation_id"),
        ("causation_id", "causation_id"),
        ("x-causation-id", "causation_id"),
        ("ce_causationid", "causation_id"),
        ("saga_id", "saga_id"),
        ("sagaId", "saga_id"),
        ("x-saga-id", "saga_id"),
        ("ce_sagaid", "saga_id"),
    ],
)
def test_identity_from_header(header: str, column: str) -> None:
    event = norm([(header, b"  value-1  ")])
    assert getattr(event, column) == "value-1"


@pytest.mark.parametrize(
    ("document", "column", "expected"),
    [
        ({"eventId": "e-1", "type": "OrderPlaced"}, "event_id", "e-1"),
        ({"id": "e-2", "data": {}}, "event_id", "e-2"),
        ({"id": 77, "payload": {}}, "event_id", "77"),
        ({"eventType": "OrderPlaced"}, "event_type", "OrderPlaced"),
        ({"type": "OrderShipped"}, "event_type", "OrderShipped"),
        ({"correlationId": "c-1"}, "correlation_id", "c-1"),
        ({"metadata": {"correlationId": "c-2"}}, "correlation_id", "c-2"),
        ({"causationId": "k-1"}, "causation_id", "k-1"),
        ({"metadata": {"causationId": "k-2"}}, "causation_id", "k-2"),
        ({"sagaId": "s-1"}, "saga_id", "s-1"),
    ],
)
def test_identity_from_json_path(document: dict[str, Any], column: str, expected: str) -> None:
    event = norm(value=as_json(document))
    assert event.content_type == "json"
    assert getattr(event, column) == expected


def test_json_id_counts_only_in_an_event_envelope() -> None:
    assert norm(value=as_json({"id": "order-9", "total": 10})).event_id is None
    assert norm(value=as_json({"id": "e-9", "specversion": "1.0"})).event_id == "e-9"
    relaxed = Conventions(event_id_json_requires_envelope=False)
    assert norm(value=as_json({"id": "order-9"}), conventions=relaxed).event_id == "order-9"


def test_each_set_of_header_names_finds_its_own_identities() -> None:
    """Records with other names, the same names in another order, an empty first candidate
    or very many headers each find their own identities."""
    conventions = Conventions()
    first = [("x-correlation-id", b"c-1"), ("ce_id", b"e-1")]
    assert norm(first, conventions=conventions).correlation_id == "c-1"
    assert norm([("correlation_id", b"c-2")], conventions=conventions).correlation_id == "c-2"
    assert norm(first[::-1], conventions=conventions).event_id == "e-1"
    empty_first = [("correlation_id", b" "), ("x-correlation-id", b"c-3")]
    assert norm(empty_first, conventions=conventions).correlation_id == "c-3"
    many = [(f"h-{n}", b"v") for n in range(100)] + [("x-request-id", b"c-4")]
    assert norm(many, conventions=conventions).correlation_id == "c-4"
    assert norm(first, conventions=conventions).correlation_id == "c-1"


def test_json_integers_past_64_bits_keep_every_digit() -> None:
    big = 123456789012345678901234567890
    assert norm(value=as_json({"correlationId": big})).correlation_id == str(big)
    assert norm(value=as_json({"correlationId": 2**63 - 1})).correlation_id == str(2**63 - 1)


def test_json_only_strings_and_numbers_count() -> None:
    event = norm(value=as_json({"correlationId": True, "metadata": {"correlationId": 12.5}}))
    assert event.correlation_id == "12.5"
    assert norm(value=as_json({"correlationId": {"nested": 1}})).correlation_id is None
    assert norm(value=as_json({"correlationId": "   "})).correlation_id is None


def test_first_configured_source_wins() -> None:
    event = norm(
        [("x-event-id", b"late"), ("ce_id", b"first"), ("event_id", b"second")],
        as_json({"eventId": "from-json", "type": "T"}),
    )
    assert event.event_id == "first"
    header_beats_json = norm([("correlationId", b"hdr")], as_json({"correlationId": "json"}))
    assert header_beats_json.correlation_id == "hdr"


def test_empty_header_falls_through_to_next_candidate() -> None:
    event = norm([("ce_id", b"   "), ("event_id", b""), ("message_id", b"m-1")])
    assert event.event_id == "m-1"


def test_header_names_match_case_insensitively() -> None:
    event = norm([("CE_ID", b"e-1"), ("X-CORRELATION-ID", b"c-1"), ("TraceParent", b"")])
    assert event.event_id == "e-1"
    assert event.correlation_id == "c-1"


def test_duplicate_header_uses_last_occurrence_and_keeps_all_in_json() -> None:
    event = norm([("correlation_id", b"old"), ("Other", None), ("correlation_id", b"new")])
    assert event.correlation_id == "new"
    assert json.loads(event.headers) == [
        ["correlation_id", "old"],
        ["Other", None],
        ["correlation_id", "new"],
    ]


def test_fallbacks_type_to_topic_saga_to_correlation_source_to_nothing() -> None:
    event = norm([("x-correlation-id", b"c-7")], topic="payments")
    assert event.event_type == "payments"
    assert event.saga_id == "c-7"
    assert event.source is None
    assert norm([("saga_id", b"s-1"), ("correlation_id", b"c-1")]).saga_id == "s-1"


def test_identity_values_are_capped() -> None:
    event = norm([("correlation_id", b"c" * 10_000)])
    assert event.correlation_id == "c" * 512


def test_identity_values_never_carry_nul() -> None:
    event = norm(
        [("ce_id", b"e\x00-1"), ("x-exception", b"Boom\x00")], as_json({"sagaId": "s\x00"})
    )
    assert (event.event_id, event.saga_id, event.dlq_error_class) == ("e-1", "s", "Boom")


# --- CloudEvents ----------------------------------------------------------------------------


def test_cloudevents_binary_mode() -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"A234-1234-1234"),
        ("ce_source", b"/mycontext/subcontext"),
        ("ce_type", b"com.example.someevent"),
        ("ce_correlationid", b"corr-1"),
        ("ce_causationid", b"cause-1"),
        ("ce_traceparent", TRACEPARENT.encode()),
        ("content-type", b"application/json"),
    ]
    event = norm(headers, as_json({"amount": 5}))
    assert (event.event_id, event.event_type, event.source) == (
        "A234-1234-1234",
        "com.example.someevent",
        "/mycontext/subcontext",
    )
    assert (event.correlation_id, event.causation_id, event.saga_id) == (
        "corr-1",
        "cause-1",
        "corr-1",
    )
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert event.content_type == "json"


def test_cloudevents_structured_mode() -> None:
    document = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:orders",
        "type": "order.created",
        "correlationid": "corr-9",
        "causationid": "cause-9",
        "sagaid": "saga-9",
        "traceparent": TRACEPARENT,
        "datacontenttype": "application/json",
        "data": {"orderId": 1},
    }
    headers = [("Content-Type", b"application/CloudEvents+json; charset=UTF-8")]
    event = norm(headers, as_json(document))
    assert event.content_type == "cloudevents-json"
    assert (event.event_id, event.event_type, event.source) == (
        "evt-1",
        "order.created",
        "urn:orders",
    )
    assert (event.correlation_id, event.causation_id, event.saga_id) == (
        "corr-9",
        "cause-9",
        "saga-9",
    )
    assert (event.trace_id, event.span_id, event.trace_sampled) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        True,
    )


def test_structured_cloudevent_json_paths_also_read_data() -> None:
    document = {"specversion": "1.0", "id": "e", "data": {"metadata": {"correlationId": "c-3"}}}
    headers = [("content-type", b"application/cloudevents+json")]
    assert norm(headers, as_json(document)).correlation_id == "c-3"


def test_structured_content_type_with_invalid_json_is_text() -> None:
    event = norm([("content-type", b"application/cloudevents+json")], b"{not json")
    assert event.content_type == "text"
    assert event.event_id is None


# --- trace context --------------------------------------------------------------------------


def test_parse_traceparent_valid() -> None:
    assert parse_traceparent(TRACEPARENT) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        True,
    )
    unsampled = TRACEPARENT[:-2] + "00"
    assert parse_traceparent(unsampled) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        False,
    )


@pytest.mark.parametrize(
    ("flags", "sampled"), [("00", False), ("01", True), ("02", False), ("03", True), ("ff", True)]
)
def test_trace_sampled_is_the_lowest_bit_of_the_flags(flags: str, sampled: bool) -> None:
    event = norm([("traceparent", (TRACEPARENT[:-2] + flags).encode())])
    assert event.trace_sampled is sampled


def test_parse_traceparent_future_version_reads_first_55_chars() -> None:
    future = "cc" + TRACEPARENT[2:]
    assert parse_traceparent(future) is not None
    assert parse_traceparent(future + "-what-the-future-holds") is not None
    assert parse_traceparent(future + "x") is None
    assert parse_traceparent(TRACEPARENT + "-extra") is None  # version 00 has no extra fields


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        TRACEPARENT.upper(),
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff" + TRACEPARENT[2:],
        TRACEPARENT[:-1],
        TRACEPARENT.replace("-", "_"),
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
    ],
)
def test_parse_traceparent_rejects_malformed(value: str) -> None:
    assert parse_traceparent(value) is None


def test_malformed_traceparent_header_gives_no_trace() -> None:
    event = norm([("traceparent", b"00-\xff\xfe-broken")])
    assert (event.trace_id, event.span_id, event.trace_sampled) == (None, None, None)


def test_malformed_first_traceparent_falls_back_to_a_valid_one() -> None:
    event = norm([("traceparent", b"nonsense"), ("ce_traceparent", TRACEPARENT.encode())])
    assert event.span_id == "b7ad6b7169203331"


# --- dead letters ---------------------------------------------------------------------------


def test_spring_dlt_headers_with_binary_numbers() -> None:
    headers = [
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", struct.pack(">i", 7)),
        ("kafka_dlt-original-offset", struct.pack(">q", 123_456_789_012)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", 1_714_564_800_000)),
        ("kafka_dlt-exception-fqcn", b"org.example.ValidationException"),
        ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", b"amount must be positive"),
        ("kafka_dlt-exception-stacktrace", b"at org.example.Handler.handle(Handler.java:42)"),
        ("retry_topic-attempts", struct.pack(">i", 3)),
    ]
    event = norm(headers, topic="orders-dlt")
    assert event.is_dlq
    assert event.dlq_format == "spring"
    assert (event.dlq_original_topic, event.dlq_original_partition) == ("orders", 7)
    assert event.dlq_original_offset == 123_456_789_012
    assert event.dlq_error_class == "org.example.ValidationException"
    assert event.dlq_error_message == "amount must be positive"
    assert event.dlq_stacktrace == "at org.example.Handler.handle(Handler.java:42)"
    assert event.dlq_attempts == 3


def test_spring_numbers_tolerate_decimal_text_and_reject_garbage() -> None:
    decimal = norm(
        [("kafka_dlt-original-partition", b"12"), ("kafka_dlt-original-offset", b"99999")]
    )
    assert (decimal.dlq_original_partition, decimal.dlq_original_offset) == (12, 99999)
    garbage = norm(
        [("kafka_dlt-original-partition", b"\x01\x02"), ("kafka_dlt-original-offset", b"-5")]
    )
    assert (garbage.dlq_original_partition, garbage.dlq_original_offset) == (None, None)
    negative = norm([("kafka_dlt-original-partition", struct.pack(">i", -1))])
    assert negative.dlq_original_partition is None


def test_spring_key_exception_and_cause_fallbacks() -> None:
    key_error = norm(
        [
            ("kafka_dlt-key-exception-fqcn", b"org.example.KeyException"),
            ("kafka_dlt-key-exception-message", b"bad key"),
        ]
    )
    assert (key_error.dlq_error_class, key_error.dlq_error_message) == (
        "org.example.KeyException",
        "bad key",
    )
    cause_only = norm([("kafka_dlt-exception-cause-fqcn", b"java.io.IOException")])
    assert cause_only.dlq_error_class == "java.io.IOException"
    assert cause_only.dlq_format == "spring"


def test_stacktrace_is_capped() -> None:
    event = norm([("kafka_dlt-exception-stacktrace", b"x" * 200_000)])
    assert event.dlq_stacktrace is not None
    assert len(event.dlq_stacktrace) == 64 * 1024


def test_kafka_connect_dlq_headers() -> None:
    headers = [
        ("__connect.errors.topic", b"inventory"),
        ("__connect.errors.partition", b"2"),
        ("__connect.errors.offset", b"1234"),
        ("__connect.errors.connector.name", b"jdbc-sink"),
        ("__connect.errors.stage", b"VALUE_CONVERTER"),
        ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
        ("__connect.errors.exception.message", b"Converting byte[] to Kafka Connect data failed"),
        ("__connect.errors.exception.stacktrace", b"org.apache...DataException: ..."),
    ]
    event = norm(headers, topic="dlq-jdbc-sink")
    assert event.is_dlq
    assert event.dlq_format == "connect"
    assert (event.dlq_original_topic, event.dlq_original_partition, event.dlq_original_offset) == (
        "inventory",
        2,
        1234,
    )
    assert event.dlq_error_class == "org.apache.kafka.connect.errors.DataException"
    assert event.dlq_error_message == "Converting byte[] to Kafka Connect data failed"
    assert event.dlq_stacktrace == "org.apache...DataException: ..."


def test_generic_dlq_headers() -> None:
    headers = [
        ("x-original-topic", b"payments"),
        ("x-original-partition", b"0"),
        ("x-original-offset", b"77"),
        ("x-exception", b"TimeoutError"),
        ("x-error-message", b"upstream timed out"),
        ("x-retry-count", b"5"),
    ]
    event = norm(headers, topic="payments-parking-lot")
    assert event.is_dlq
    assert event.dlq_format == "generic"
    assert (event.dlq_original_topic, event.dlq_original_partition, event.dlq_original_offset) == (
        "payments",
        0,
        77,
    )
    assert (event.dlq_error_class, event.dlq_error_message) == (
        "TimeoutError",
        "upstream timed out",
    )
    assert event.dlq_attempts == 5
    assert norm([("x-attempts", b"2")]).dlq_attempts == 2


def test_retry_counter_alone_does_not_make_a_dead_letter() -> None:
    event = norm([("kafka_deliveryAttempt", struct.pack(">i", 2))], topic="orders-retry-1000")
    assert event.dlq_attempts == 2
    assert not event.is_dlq
    assert event.dlq_format is None


@pytest.mark.parametrize(
    "topic",
    [
        "orders.DLT",
        "orders-dlt",
        "orders.DLQ",
        "orders-dlq",
        "orders_dlq",
        "dlq.orders",
        "o.dead-letter",
    ],
)
def test_dlq_by_topic_name(topic: str) -> None:
    assert is_dlq_topic(topic, DEFAULTS)
    event = norm(topic=topic)
    assert event.is_dlq
    assert event.dlq_format is None  # nothing but the name says so


@pytest.mark.parametrize("topic", ["orders", "orders-retry", "dlqueue", "orders.dlt.archive"])
def test_ordinary_topic_names_are_not_dlq(topic: str) -> None:
    assert not is_dlq_topic(topic, DEFAULTS)
    assert not norm(topic=topic).is_dlq


def test_dlq_topic_patterns_ignore_case_and_can_be_configured() -> None:
    assert is_dlq_topic("orders.dlq", DEFAULTS)
    custom = Conventions.from_mapping({"dlq_topic_patterns": ["*.parking-lot"]})
    assert is_dlq_topic("orders.parking-lot", custom)
    assert not is_dlq_topic("orders.DLT", custom)
    assert not is_dlq_topic("anything", Conventions(dlq_topic_patterns=[]))


# --- value ----------------------------------------------------------------------------------


def test_value_truncated_at_cap_keeps_original_size() -> None:
    conventions = Conventions(value_cap=1024)
    document = {"eventId": "e-1", "type": "T", "blob": "x" * 5000}
    event = norm(value=as_json(document), conventions=conventions)
    assert event.value_truncated
    assert event.value_size == len(as_json(document))
    assert event.value is not None and len(event.value) == 1024
    assert event.content_type == "json"
    assert event.event_id is None  # a cut document is not parsed


def test_value_at_cap_is_not_truncated() -> None:
    event = norm(value=b"a" * 1024, conventions=Conventions(value_cap=1024))
    assert not event.value_truncated
    assert event.value == b"a" * 1024


def test_tombstone_and_empty_value() -> None:
    tombstone = norm(value=None)
    assert tombstone.is_tombstone
    assert (tombstone.content_type, tombstone.value_size, tombstone.value) == ("empty", -1, None)
    empty = norm(value=b"")
    assert not empty.is_tombstone
    assert (empty.content_type, empty.value_size) == ("empty", 0)


@pytest.mark.parametrize(
    ("value", "content_type"),
    [
        (b'{"a": 1}', "json"),
        (b"  \n[1, 2, 3]", "json"),
        (b'{"a": 1', "text"),
        (b'{"a": 1} \r\n\t', "json"),
        (b'{"a": 1} x', "text"),
        (b'{"a": 1}{}', "text"),
        (b'{"a": NaN}', "text"),
        (b'{"a": Infinity}', "text"),
        (b'{"a": 1e400}', "json"),
        (b'["\\ud800 lone surrogate"]', "json"),
        (b"[" * 2_000 + b"]" * 2_000, "text"),  # deeper than either decoder goes
        (b"[" * 100_000, "text"),
        (b"plain text\twith tabs\r\n", "text"),
        ("ünïcödé ✓".encode(), "text"),
        (b"ctrl\x01char", "binary"),
        (b"\xff\xfe\x00garbage", "binary"),
        (b"\x00\x01", "binary"),
    ],
)
def test_content_type_detection(value: bytes, content_type: str) -> None:
    assert norm(value=value).content_type == content_type


def test_confluent_wire_prefix_without_a_registry_is_pending() -> None:
    framed = b"\x00" + struct.pack(">I", 1042) + b"\x02\x06abc"
    event = norm(value=framed)
    assert (event.content_type, event.schema_id) == ("schema-registry", 1042)
    assert event.decode_state == "pending"
    assert event.decode_note == (
        "schema 1042 unavailable (no schema registry is configured for this cluster)"
    )
    assert event.decoded_value is None
    plain = norm(value=b'{"a":1}')
    assert (plain.schema_id, plain.decode_state, plain.decode_note) == (None, None, None)
    # A big-endian number is not a frame: schema id 0 is no registry's.
    number = norm(value=(5).to_bytes(8, "big"))
    assert (number.content_type, number.decode_state) == ("binary", None)


def test_non_utf8_key_header_and_value() -> None:
    event = norm(
        [("correlation_id", b"c-\xff\xfe"), ("bin", b"\x80\x81\x00")],
        b"\xc3\x28\xa0\xa1",
        key=b"\xff\x00key",
    )
    assert event.key == b"\xff\x00key"
    assert event.content_type == "binary"
    assert event.correlation_id == "c-\ufffd\ufffd"
    stored = json.loads(event.headers)
    assert stored[1] == ["bin", {"b64": "gIEA"}]


def test_headers_json_keeps_text_null_and_binary() -> None:
    event = norm([("a", b"1"), ("b", None), ("c", "ü".encode()), ("d", b"x\x00y")])
    assert json.loads(event.headers) == [
        ["a", "1"],
        ["b", None],
        ["c", "ü"],
        ["d", {"b64": "eAB5"}],
    ]


def test_headers_json_is_compact_json_in_wire_order() -> None:
    headers = [
        ("ce_id", b"e-1"),
        ("CE_ID", b"e-2"),
        ("quote", b'say "hi"'),
        ("back\\slash", b"C:\\path"),
        ("tab", b"a\tb"),
        ("del", b"x\x7f"),
        ('na"me', b"v"),
        ("caf\u00e9", "th\u00e9 \u2713".encode()),
        ("100%s", b"%d %s %%"),
        ("empty", b""),
    ]
    event = norm(headers)
    expected = [[name, raw.decode()] for name, raw in headers]
    assert event.headers == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert event.event_id == "e-2"


def test_header_values_totalling_more_than_the_cap_are_each_kept_whole() -> None:
    event = norm([("a", b"x" * 10_000), ("b", b"y" * 10_000)])
    assert json.loads(event.headers) == [["a", "x" * 10_000], ["b", "y" * 10_000]]


def test_headers_of_every_sequence_shape_are_read_once() -> None:
    headers = (("correlation_id", b"c-1"), ["x-list", b"l"], iter(("x-iter", b"i")))
    event = norm(headers)  # type: ignore[arg-type]
    assert json.loads(event.headers) == [
        ["correlation_id", "c-1"],
        ["x-list", "l"],
        ["x-iter", "i"],
    ]
    assert event.correlation_id == "c-1"


def test_every_column_comes_from_its_own_source() -> None:
    headers = [
        ("ce_id", b"evt-1"),
        ("ce_type", b"OrderPlaced"),
        ("ce_source", b"/orders"),
        ("correlation_id", b"corr-1"),
        ("causation_id", b"cause-1"),
        ("saga_id", b"saga-1"),
        ("traceparent", TRACEPARENT.encode()),
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", struct.pack(">i", 5)),
        ("kafka_dlt-original-offset", struct.pack(">q", 77)),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", b"boom"),
        ("kafka_dlt-exception-stacktrace", b"at Foo.bar"),
        ("retry_topic-attempts", struct.pack(">i", 3)),
    ]
    event = norm(headers, b'{"a": 1}', topic="orders.DLT", key=b"k-1")
    assert (event.topic, event.partition, event.offset) == ("orders.DLT", 3, 42)
    assert (event.timestamp_ms, event.key, event.value) == (1_714_564_800_000, b"k-1", b'{"a": 1}')
    assert (event.value_size, event.value_truncated, event.is_tombstone) == (8, False, False)
    assert (event.content_type, event.schema_id) == ("json", None)
    assert (event.event_id, event.event_type, event.source) == ("evt-1", "OrderPlaced", "/orders")
    assert (event.correlation_id, event.causation_id, event.saga_id) == (
        "corr-1",
        "cause-1",
        "saga-1",
    )
    assert (event.trace_id, event.span_id, event.trace_sampled) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        True,
    )
    assert (event.is_dlq, event.dlq_format, event.dlq_attempts) == (True, "spring", 3)
    assert (event.dlq_original_topic, event.dlq_original_partition) == ("orders", 5)
    assert event.dlq_original_offset == 77
    assert (event.dlq_error_class, event.dlq_error_message, event.dlq_stacktrace) == (
        "java.lang.IllegalStateException",
        "boom",
        "at Foo.bar",
    )
    assert len(json.loads(event.headers)) == len(headers)


def test_five_thousand_headers() -> None:
    headers = [(f"h{i}", str(i).encode()) for i in range(4999)]
    headers.append(("x-correlation-id", b"found-at-the-end"))
    event = norm(headers)
    assert event.correlation_id == "found-at-the-end"
    stored = json.loads(event.headers)
    assert len(stored) == 1001
    assert stored[0] == ["h0", "0"]
    assert stored[999] == ["h999", "999"]
    assert stored[-1] == ["…", "4000 more headers"]


def test_one_megabyte_header_value() -> None:
    huge = b"x" * 1_048_576
    event = norm([("correlation_id", huge), ("blob", b"\xff" * 1_048_576)])
    assert event.correlation_id == "x" * 512
    text_entry, binary_entry = json.loads(event.headers)
    assert text_entry[1] == {"text": "x" * 16384, "truncated": True, "size": 1_048_576}
    assert binary_entry[1]["truncated"] is True
    assert binary_entry[1]["size"] == 1_048_576
    assert base64.b64decode(binary_entry[1]["b64"]) == b"\xff" * 16384


def test_hostile_header_shapes_do_not_raise() -> None:
    raw = RawRecord(
        topic="orders",
        partition=0,
        offset=1,
        timestamp_ms=0,
        key=None,
        value=b"{}",
        headers=[("ok", b"1"), ("str-value", "text"), ("x",), (b"bytes-name", b"v"), (5, b"v")],  # type: ignore[list-item]
    )
    event = normalize(raw, DEFAULTS)
    assert json.loads(event.headers) == [
        ["ok", "1"],
        ["str-value", "text"],
        ["bytes-name", "v"],
    ]


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    names = ["ce_id", "traceparent", "content-type", "kafka_dlt-original-offset", "x-retry-count"]
    for _ in range(500):
        headers = [
            (rng.choice(names), rng.randbytes(rng.randint(0, 70))) for _ in range(rng.randint(0, 6))
        ]
        value = rng.choice([None, rng.randbytes(rng.randint(0, 300)), b"{" + rng.randbytes(40)])
        event = norm(headers, value, key=rng.randbytes(8))
        json.loads(event.headers)


# --- configuration --------------------------------------------------------------------------


def test_from_mapping_overrides_a_header_list() -> None:
    conventions = Conventions.from_mapping(
        {"correlation_id_headers": ["X-Trace-Group"], "value_cap": 2048}
    )
    event = norm(
        [("x-trace-group", b"g-1"), ("correlation_id", b"ignored")], conventions=conventions
    )
    assert event.correlation_id == "g-1"
    assert conventions.value_cap == 2048
    assert conventions.event_id_headers == DEFAULTS.event_id_headers


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"corelation_id_headers": ["x"]}, "corelation_id_headers"),
        ({"event_id_headers": "ce_id"}, "event_id_headers"),
        ({"event_id_headers": ["ok", 3]}, "event_id_headers"),
        ({"value_cap": "1MB"}, "value_cap"),
        ({"value_cap": 0}, "value_cap"),
        ({"event_id_json_requires_envelope": "yes"}, "event_id_json_requires_envelope"),
        ({"saga_id_json_paths": ["sagaId"]}, "saga_id_json_paths"),
    ],
)
def test_from_mapping_rejects_bad_settings_naming_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        Conventions.from_mapping(data)


def test_describe_lists_every_column_in_configured_order() -> None:
    rows = dict(DEFAULTS.describe())
    for column in (
        "event_id",
        "event_type",
        "source",
        "correlation_id",
        "causation_id",
        "saga_id",
        "trace_id",
        "is_dlq",
        "dlq_original_topic",
        "dlq_attempts",
    ):
        assert rows[column], column
    assert rows["event_id"][:2] == ["header ce_id", "structured CloudEvents attribute id"]
    assert rows["event_type"][-1] == "topic name"
    assert rows["saga_id"][-1] == "correlation_id"
    assert "topic name matching *.DLT" in rows["is_dlq"]
    custom = dict(Conventions.from_mapping({"causation_id_headers": ["cause"]}).describe())
    assert custom["causation_id"][0] == "header cause"


# --- throughput shape -----------------------------------------------------------------------


def realistic_record(i: int) -> tuple[RawRecord, dict[str, str]]:
    ids = {
        "event_id": str(uuid.UUID(int=i)),
        "correlation_id": f"corr-{i // 10}",
        "trace_id": f"{i + 1:032x}",
        "span_id": f"{i + 1:016x}",
    }
    payload = {
        "orderId": f"order-{i}",
        "customer": {"id": i, "name": "Ada Lovelace", "tier": "gold"},
        "items": [{"sku": f"SKU-{j}", "qty": j, "price": 9.99 * j} for j in range(6)],
        "metadata": {"causationId": f"cause-{i}"},
        "note": "n" * 60,
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", ids["event_id"].encode()),
        ("ce_source", b"/orders-service"),
        ("ce_type", b"com.example.order.created"),
        ("ce_time", b"2024-05-01T12:00:00Z"),
        ("content-type", b"application/json"),
        ("traceparent", f"00-{ids['trace_id']}-{ids['span_id']}-01".encode()),
        ("correlation_id", ids["correlation_id"].encode()),
    ]
    raw = RawRecord(
        "orders", i % 12, i, 1_714_564_800_000 + i, f"order-{i}".encode(), as_json(payload), headers
    )
    return raw, ids


def test_twenty_thousand_realistic_records() -> None:
    for i in range(20_000):
        raw, ids = realistic_record(i)
        event = normalize(raw, DEFAULTS)
        assert event.event_id == ids["event_id"]
        assert event.correlation_id == event.saga_id == ids["correlation_id"]
        assert event.causation_id == f"cause-{i}"
        assert (event.trace_id, event.span_id, event.trace_sampled) == (
            ids["trace_id"],
            ids["span_id"],
            True,
        )
        assert event.event_type == "com.example.order.created"
        assert event.source == "/orders-service"
        assert event.content_type == "json"
        assert not event.is_dlq
        assert event.offset == i
