"""OTLP/HTTP trace decoding: both wire formats, limits, partial success, interop with the SDK."""

from __future__ import annotations

import base64
import gzip
import json
import random
import tracemalloc
import zlib
from typing import Any

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from collectors.otlp import decode_traces_request, encode_error, encode_response, wire_format
from collectors.otlp_model import (
    MAX_ATTRIBUTES,
    MAX_EVENTS,
    MAX_STRING_BYTES,
    DecodeResult,
    OtlpError,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
LINKED_TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
LINKED_SPAN_ID = bytes.fromhex("b7ad6b7169203331")


def any_value(value: Any) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, bytes):
        return common_pb2.AnyValue(bytes_value=value)
    if isinstance(value, list):
        return common_pb2.AnyValue(
            array_value=common_pb2.ArrayValue(values=[any_value(item) for item in value])
        )
    if isinstance(value, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=key_values(value)))
    return common_pb2.AnyValue(string_value=value)


def key_values(attributes: dict[str, Any]) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def proto_span(**fields: Any) -> trace_pb2.Span:
    attributes = fields.pop("attributes", {})
    span = trace_pb2.Span(
        trace_id=fields.pop("trace_id", TRACE_ID),
        span_id=fields.pop("span_id", SPAN_ID),
        name=fields.pop("name", "send orders"),
        kind=fields.pop("kind", trace_pb2.Span.SPAN_KIND_PRODUCER),
        start_time_unix_nano=fields.pop("start", 1_700_000_000_000_000_000),
        end_time_unix_nano=fields.pop("end", 1_700_000_000_002_500_000),
        **fields,
    )
    span.attributes.extend(key_values(attributes))
    return span


def proto_request(*spans: trace_pb2.Span, service: str = "checkout") -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        key_values({"service.name": service, "host.name": "node-1"})
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.kafka"
    scope_spans.scope.version = "0.50b0"
    scope_spans.spans.extend(spans)
    return request.SerializeToString()


def json_request(*spans: Any, service: str = "checkout") -> bytes:
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "manual"}, "spans": list(spans)}],
                "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
            }
        ]
    }
    return json.dumps(document).encode()


def json_span(**fields: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TRACE_ID.hex(),
        "spanId": SPAN_ID.hex(),
        "name": "process orders",
        "kind": 5,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000001000000",
    }
    span.update(fields)
    return span


def attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


# --------------------------------------------------------------------------- protobuf


def test_protobuf_span_fields_are_decoded() -> None:
    span = proto_span(
        parent_span_id=PARENT_ID,
        trace_state="vendor=1",
        attributes={
            "text": "hello",
            "flag": True,
            "count": 7,
            "ratio": 0.25,
            "raw": b"\x00\xff",
            "list": ["a", 1, [True]],
            "map": {"inner": "x", "n": 2},
        },
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"),
        events=[
            trace_pb2.Span.Event(
                name="exception",
                time_unix_nano=1_700_000_000_001_000_000,
                attributes=key_values({"exception.type": "ValueError"}),
            )
        ],
        links=[
            trace_pb2.Span.Link(
                trace_id=LINKED_TRACE_ID,
                span_id=LINKED_SPAN_ID,
                attributes=key_values({"messaging.kafka.offset": 41}),
            )
        ],
    )
    result = decode_traces_request(proto_request(span), PROTOBUF, None)

    assert result.rejected == 0 and result.error_message is None
    [record] = result.spans
    assert record.trace_id == TRACE_ID.hex()
    assert record.span_id == SPAN_ID.hex()
    assert record.parent_span_id == PARENT_ID.hex()
    assert record.name == "send orders"
    assert record.kind == 4
    assert record.service_name == "checkout"
    assert record.resource_attributes["host.name"] == "node-1"
    assert record.scope_name == "opentelemetry.instrumentation.kafka"
    assert record.scope_version == "0.50b0"
    assert record.trace_state == "vendor=1"
    assert record.start_ns == 1_700_000_000_000_000_000
    assert record.duration_ns == 2_500_000
    assert (record.status_code, record.status_message) == (2, "boom")
    assert record.attributes == {
        "text": "hello",
        "flag": True,
        "count": 7,
        "ratio": 0.25,
        "raw": {"b64": base64.b64encode(b"\x00\xff").decode()},
        "list": ["a", 1, [True]],
        "map": {"inner": "x", "n": 2},
    }
    assert record.events == [
        {
            "name": "exception",
            "time_ns": 1_700_000_000_001_000_000,
            "attributes": {"exception.type": "ValueError"},
        }
    ]
    assert record.links == [
        {
            "trace_id": LINKED_TRACE_ID.hex(),
            "span_id": LINKED_SPAN_ID.hex(),
            "attributes": {"messaging.kafka.offset": 41},
        }
    ]
    json.dumps(record.attributes)  # values are JSON-safe


def test_root_span_has_no_parent_and_end_before_start_has_zero_duration() -> None:
    span = proto_span(parent_span_id=bytes(8), start=2_000, end=1_000)
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert record.parent_span_id is None
    assert record.duration_ns == 0


def test_empty_protobuf_request_is_a_success() -> None:
    result = decode_traces_request(b"", PROTOBUF, None)
    assert result == DecodeResult(spans=[], rejected=0, error_message=None)


def test_media_type_parameters_and_case_are_ignored() -> None:
    body = proto_request(proto_span())
    assert len(decode_traces_request(body, "Application/X-Protobuf; charset=utf-8", "").spans)
    assert len(decode_traces_request(body, "application/protobuf", "identity").spans) == 1
    assert wire_format("application/json; charset=utf-8") == "json"
    assert wire_format("text/plain") is None
    assert wire_format(None) is None


# --------------------------------------------------------------------------- Kafka coordinates


def test_kafka_coordinates_from_current_attribute_names() -> None:
    span = proto_span(
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.name": "Send",
            "messaging.operation.type": "publish",
            "messaging.destination.name": "orders",
            "messaging.destination.partition.id": "3",
            "messaging.kafka.offset": 1042,
            "messaging.consumer.group.name": "billing",
            "messaging.kafka.message.key": "order-17",
            "messaging.message.id": "m-1",
            "messaging.batch.message_count": 20,
            "messaging.kafka.message.tombstone": True,
        }
    )
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert record.messaging_system == "kafka"
    assert record.messaging_operation == "send"
    assert record.topic == "orders"
    assert record.partition == 3
    assert record.offset == 1042
    assert record.consumer_group == "billing"
    assert record.message_key == "order-17"
    assert record.message_id == "m-1"
    assert record.batch_count == 20
    assert record.tombstone is True


def test_kafka_coordinates_from_older_attribute_names() -> None:
    span = json_span(
        attributes=[
            attr("messaging.system", {"stringValue": "kafka"}),
            attr("messaging.operation", {"stringValue": "receive"}),
            attr("messaging.destination", {"stringValue": "payments"}),
            attr("messaging.kafka.destination.partition", {"intValue": "5"}),
            attr("messaging.kafka.message.offset", {"intValue": 99}),
            attr("messaging.kafka.consumer.group", {"stringValue": "ledger"}),
        ]
    )
    [record] = decode_traces_request(json_request(span), JSON, None).spans
    assert record.messaging_operation == "receive"
    assert record.topic == "payments"
    assert record.partition == 5
    assert record.offset == 99
    assert record.consumer_group == "ledger"
    assert record.message_key is None and record.batch_count is None


def test_operation_type_is_used_when_operation_name_is_missing() -> None:
    span = proto_span(attributes={"messaging.operation.type": "PROCESS"})
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert record.messaging_operation == "process"


def test_spans_without_messaging_attributes_have_no_kafka_coordinates() -> None:
    span = proto_span(
        attributes={"http.route": "/orders", "messaging.destination.partition.id": "x"}
    )
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert record.topic is None and record.partition is None and record.offset is None


# --------------------------------------------------------------------------- OTLP/JSON


def test_json_span_fields_are_decoded() -> None:
    span = json_span(
        traceId=TRACE_ID.hex().upper(),
        parentSpanId=PARENT_ID.hex(),
        startTimeUnixNano=1_700_000_000_000_000_000,
        endTimeUnixNano="1700000000000750000",
        status={"code": 1},
        attributes=[
            attr("text", {"stringValue": "hi"}),
            attr("int_as_string", {"intValue": "9007199254740993"}),
            attr("int_as_number", {"intValue": 12}),
            attr("double", {"doubleValue": 1.5}),
            attr("nan", {"doubleValue": "NaN"}),
            attr("flag", {"boolValue": False}),
            attr("raw", {"bytesValue": base64.b64encode(b"\x01\x02").decode()}),
            attr("list", {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}),
            attr("map", {"kvlistValue": {"values": [attr("k", {"boolValue": True})]}}),
            attr("empty", {}),
        ],
        events=[{"timeUnixNano": "1700000000000500000", "name": "ack", "attributes": []}],
        links=[{"traceId": LINKED_TRACE_ID.hex(), "spanId": LINKED_SPAN_ID.hex()}],
        someFutureField={"ignored": True},
    )
    result = decode_traces_request(json_request(span), "application/json; charset=utf-8", None)

    assert result.rejected == 0
    [record] = result.spans
    assert record.trace_id == TRACE_ID.hex()  # hex is case-insensitive, stored lowercase
    assert record.parent_span_id == PARENT_ID.hex()
    assert record.kind == 5
    assert record.service_name == "checkout"
    assert record.status_code == 1 and record.status_message is None
    assert record.duration_ns == 750_000
    assert record.attributes == {
        "text": "hi",
        "int_as_string": 9007199254740993,
        "int_as_number": 12,
        "double": 1.5,
        "nan": "NaN",
        "flag": False,
        "raw": {"b64": base64.b64encode(b"\x01\x02").decode()},
        "list": ["a", 2],
        "map": {"k": True},
        "empty": None,
    }
    assert record.events == [{"name": "ack", "time_ns": 1700000000000500000, "attributes": {}}]
    assert record.links == [
        {"trace_id": LINKED_TRACE_ID.hex(), "span_id": LINKED_SPAN_ID.hex(), "attributes": {}}
    ]


def test_json_and_protobuf_encodings_of_one_request_decode_alike() -> None:
    span = proto_span(
        parent_span_id=PARENT_ID,
        attributes={"messaging.destination.name": "orders", "n": 3, "d": 2.5, "b": b"k"},
        events=[trace_pb2.Span.Event(name="e", time_unix_nano=5)],
    )
    body = proto_request(span)
    document = json_format.MessageToDict(ExportTraceServiceRequest.FromString(body))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    item[name] = base64.b64decode(item[name]).hex()
                item["kind"] = trace_pb2.Span.SpanKind.Value(item["kind"])
    from_json = decode_traces_request(json.dumps(document).encode(), JSON, None)
    from_protobuf = decode_traces_request(body, PROTOBUF, None)
    assert from_json.spans == from_protobuf.spans


def test_json_accepts_snake_case_names_enum_names_and_base64_ids() -> None:
    span = {
        "trace_id": base64.b64encode(TRACE_ID).decode(),
        "span_id": base64.b64encode(SPAN_ID).decode(),
        "name": "poll orders",
        "kind": "SPAN_KIND_CLIENT",
        "start_time_unix_nano": "10",
        "end_time_unix_nano": "30",
    }
    document = {"resource_spans": [{"scope_spans": [{"spans": [span]}]}]}
    [record] = decode_traces_request(json.dumps(document).encode(), JSON, None).spans
    assert record.trace_id == TRACE_ID.hex()
    assert record.span_id == SPAN_ID.hex()
    assert record.kind == 3
    assert record.duration_ns == 20
    assert record.service_name is None


def test_json_strings_with_lone_surrogates_are_made_storable() -> None:
    body = json_request(json_span(name="bad \ud800 name")).replace(b"\\ud800", b"\\udc00")
    [record] = decode_traces_request(body, JSON, None).spans
    record.name.encode("utf-8")  # must not raise
    assert record.name.startswith("bad ")


# --------------------------------------------------------------------------- partial success


def test_one_bad_span_id_among_good_ones_is_a_partial_success_in_protobuf() -> None:
    good = [proto_span(span_id=bytes([1] * 7 + [n])) for n in range(3)]
    bad = proto_span(span_id=b"\x01\x02\x03")
    result = decode_traces_request(proto_request(*good, bad), PROTOBUF, None)
    assert len(result.spans) == 3
    assert result.rejected == 1
    assert result.error_message is not None and "span id" in result.error_message


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"spanId": "zz" * 8}, "span id"),
        ({"spanId": "00" * 8}, "span id"),
        ({"traceId": "abc"}, "trace id"),
        ({"traceId": "0" * 32}, "trace id"),
        ({"traceId": None}, "trace id"),
        ({"parentSpanId": "12345"}, "parent span id"),
        ({"startTimeUnixNano": "yesterday"}, "timestamp"),
        ({"endTimeUnixNano": -5}, "timestamp"),
    ],
)
def test_invalid_json_span_is_rejected_alone(fields: dict[str, Any], reason: str) -> None:
    body = json_request(json_span(), json_span(spanId="1" * 16), json_span(**fields))
    result = decode_traces_request(body, JSON, None)
    assert len(result.spans) == 2
    assert result.rejected == 1
    assert result.error_message is not None and reason in result.error_message


def test_span_that_is_not_an_object_is_rejected() -> None:
    result = decode_traces_request(json_request(json_span(), "oops", 42), JSON, None)
    assert (len(result.spans), result.rejected) == (1, 2)


def test_malformed_pieces_of_a_span_are_dropped_and_counted() -> None:
    span = json_span(
        attributes=[
            attr("good", {"intValue": "1"}),
            attr("bad_int", {"intValue": "one"}),
            attr("bad_bool", {"boolValue": "yes"}),
            "not a key value",
            {"key": "", "value": {"stringValue": "no key"}},
        ],
        events=[{"timeUnixNano": "x"}, {"name": "ok", "timeUnixNano": "1"}],
        links=[{"traceId": "bad", "spanId": "bad"}, 7],
        droppedAttributesCount=2,
    )
    [record] = decode_traces_request(json_request(span), JSON, None).spans
    assert record.attributes == {"good": 1}
    assert record.dropped_attributes_count == 4 + 2
    assert [event["name"] for event in record.events] == ["ok"]
    assert record.dropped_events_count == 1
    assert record.links == [] and record.dropped_links_count == 2


# --------------------------------------------------------------------------- limits


def test_attribute_count_and_string_size_are_capped() -> None:
    attributes: dict[str, Any] = {f"k{i}": i for i in range(MAX_ATTRIBUTES + 50)}
    attributes["k0"] = "é" * 10_000
    span = proto_span(attributes=attributes, name="n" * 5_000)
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert len(record.attributes) == MAX_ATTRIBUTES
    assert record.dropped_attributes_count == 50
    assert len(record.attributes["k0"].encode()) <= MAX_STRING_BYTES
    assert record.attributes["k0"].startswith("éé")
    assert len(record.name.encode()) == 1024


def test_events_are_capped_and_deep_values_are_cut() -> None:
    nested: Any = "bottom"
    for _ in range(40):
        nested = [nested]
    events = [trace_pb2.Span.Event(name=f"e{i}", time_unix_nano=i) for i in range(MAX_EVENTS + 5)]
    span = proto_span(attributes={"deep": nested}, events=events)
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert len(record.events) == MAX_EVENTS
    assert record.dropped_events_count == 5
    depth, value = 0, record.attributes["deep"]
    while value:
        depth, value = depth + 1, value[0]
    assert 1 <= depth < 10
    json.dumps(record.attributes)


def test_huge_attribute_values_stay_within_the_budget() -> None:
    wide = ["x" * 4_000] * 40
    span = proto_span(attributes={f"a{i}": wide for i in range(20)})
    [record] = decode_traces_request(proto_request(span), PROTOBUF, None).spans
    assert len(json.dumps(record.attributes)) < 200_000
    assert record.dropped_attributes_count > 0


def test_raw_body_over_the_limit_is_413() -> None:
    body = proto_request(*[proto_span(span_id=bytes([1] * 7 + [n])) for n in range(20)])
    with pytest.raises(OtlpError) as error:
        decode_traces_request(body, PROTOBUF, None, max_bytes=len(body) - 1)
    assert error.value.status == 413


def test_gzip_body_is_decoded() -> None:
    body = gzip.compress(json_request(json_span()))
    result = decode_traces_request(body, JSON, "gzip")
    assert len(result.spans) == 1


def test_concatenated_gzip_members_are_one_body() -> None:
    raw = json_request(json_span())
    body = gzip.compress(raw[:10]) + gzip.compress(raw[10:])
    assert len(decode_traces_request(body, JSON, "GZIP").spans) == 1


def gzip_of_zeros(mebibytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(mebibytes)) + compressor.flush()


@pytest.mark.parametrize(
    ("member_mebibytes", "members"),
    [pytest.param(32, 1, id="one member, 32 MiB"), pytest.param(8, 25, id="25 members, 200 MiB")],
)
def test_gzip_bomb_is_413_without_inflating_past_the_limit(
    member_mebibytes: int, members: int
) -> None:
    bomb = gzip_of_zeros(member_mebibytes) * members
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(OtlpError) as error:
            decode_traces_request(bomb, PROTOBUF, "gzip", max_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.value.status == 413
    assert peak < 8 << 20


@pytest.mark.parametrize(
    "body", [b"\x1f\x8b\x08\x00garbage", gzip.compress(b"{}")[:-6], b"plain text"]
)
def test_broken_gzip_is_400(body: bytes) -> None:
    with pytest.raises(OtlpError) as error:
        decode_traces_request(body, JSON, "gzip")
    assert error.value.status == 400


# --------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xff\xff\xff", PROTOBUF),
        (b"not protobuf at all", PROTOBUF),
        (b"{not json", JSON),
        (b"", JSON),
        (b"[1, 2]", JSON),
        (b'"resourceSpans"', JSON),
        (b"\xff\xfe\x00garbage", JSON),
        (b"[" * 100_000 + b"]" * 100_000, JSON),
        (b'{"resourceSpans": {"not": "a list"}}', JSON),
        (b'{"resourceSpans": [{"scopeSpans": "nope"}]}', JSON),
        (b'{"resourceSpans": [{"resource": []}]}', JSON),
    ],
)
def test_garbage_is_400(body: bytes, content_type: str) -> None:
    with pytest.raises(OtlpError) as error:
        decode_traces_request(body, content_type, None)
    assert error.value.status == 400
    assert error.value.message


@pytest.mark.parametrize(
    ("content_type", "content_encoding"),
    [
        ("text/plain", None),
        (None, None),
        ("application/x-www-form-urlencoded", None),
        (PROTOBUF, "br"),
        (PROTOBUF, "deflate, gzip"),
    ],
)
def test_unsupported_type_or_encoding_is_415(
    content_type: str | None, content_encoding: str | None
) -> None:
    with pytest.raises(OtlpError) as error:
        decode_traces_request(proto_request(proto_span()), content_type, content_encoding)
    assert error.value.status == 415


def test_random_bytes_only_ever_raise_otlp_error() -> None:
    rng = random.Random(7)
    valid_json = json_request(json_span(attributes=[attr("a", {"intValue": "1"})]))
    valid_protobuf = proto_request(proto_span(attributes={"a": [1, {"b": "c"}]}))
    for _ in range(300):
        for base, content_type in ((valid_json, JSON), (valid_protobuf, PROTOBUF)):
            mutated = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            try:
                result = decode_traces_request(bytes(mutated), content_type, None)
            except OtlpError as error:
                assert error.status == 400
                continue
            for record in result.spans:
                json.dumps(record.attributes)
                record.name.encode("utf-8")


# --------------------------------------------------------------------------- responses


def test_protobuf_response_leaves_partial_success_unset_on_full_success() -> None:
    body, media_type = encode_response(DecodeResult(spans=[]), PROTOBUF)
    assert media_type == PROTOBUF
    assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")


def test_protobuf_response_reports_rejected_spans() -> None:
    result = DecodeResult(spans=[], rejected=2, error_message="rejected 2 spans")
    body, media_type = encode_response(result, "application/x-protobuf; charset=utf-8")
    response = ExportTraceServiceResponse.FromString(body)
    assert media_type == PROTOBUF
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "rejected 2 spans"


def test_json_responses_parse_back() -> None:
    body, media_type = encode_response(DecodeResult(spans=[]), JSON)
    assert media_type == JSON
    assert json.loads(body) == {"partialSuccess": {}}

    partial = DecodeResult(spans=[], rejected=1, error_message="1 with invalid span id")
    body, _ = encode_response(partial, JSON)
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"
    response = json_format.Parse(body, ExportTraceServiceResponse())
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == "1 with invalid span id"


def test_errors_are_google_rpc_status_in_the_request_format() -> None:
    body, media_type = encode_error(400, "body is not valid JSON", PROTOBUF)
    status = status_pb2.Status.FromString(body)
    assert media_type == PROTOBUF
    assert status.message == "body is not valid JSON"
    assert status.code == 3  # INVALID_ARGUMENT

    body, media_type = encode_error(413, "too large \ud800", JSON)
    status = json_format.Parse(body, status_pb2.Status())
    assert media_type == JSON
    assert status.message.startswith("too large")

    _, media_type = encode_error(415, "unsupported content type", "text/plain")
    assert media_type == JSON


# --------------------------------------------------------------------------- interop


def test_request_from_the_opentelemetry_exporter_is_decoded() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders-service"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("orders.producer", "1.2.3")

    with tracer.start_as_current_span(
        "send orders",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.destination.name": "orders",
            "messaging.destination.partition.id": "2",
            "messaging.kafka.offset": 77,
            "messaging.kafka.message.key": "order-9",
        },
    ) as producer:
        producer.add_event("enqueued", {"queue.depth": 3})
    producer_context = producer.get_span_context()
    with tracer.start_as_current_span(
        "process orders",
        kind=SpanKind.CONSUMER,
        links=[Link(producer_context, {"messaging.kafka.offset": 77})],
        attributes={"messaging.consumer.group.name": "billing", "retries": [1, 2]},
    ) as consumer:
        consumer.set_status(Status(StatusCode.ERROR, "handler failed"))
    provider.shutdown()

    body = encode_spans(exporter.get_finished_spans()).SerializeToString()
    result = decode_traces_request(gzip.compress(body), PROTOBUF, "gzip")

    assert result.rejected == 0
    send, process = sorted(result.spans, key=lambda record: record.name, reverse=True)
    assert send.service_name == process.service_name == "orders-service"
    assert send.scope_name == "orders.producer" and send.scope_version == "1.2.3"
    assert send.trace_id == format(producer_context.trace_id, "032x")
    assert send.span_id == format(producer_context.span_id, "016x")
    assert (send.kind, send.topic, send.partition, send.offset) == (4, "orders", 2, 77)
    assert send.message_key == "order-9" and send.messaging_operation == "send"
    assert send.events[0]["name"] == "enqueued"
    assert send.events[0]["attributes"] == {"queue.depth": 3}
    assert process.kind == 5
    assert process.consumer_group == "billing"
    assert process.attributes["retries"] == [1, 2]
    assert (process.status_code, process.status_message) == (2, "handler failed")
    assert process.links == [
        {
            "trace_id": send.trace_id,
            "span_id": send.span_id,
            "attributes": {"messaging.kafka.offset": 77},
        }
    ]
