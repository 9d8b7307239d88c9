"""Decoding records as the tap does: produced by the Confluent serializers against the
real registry, and every kind of bad frame or failing registry with the state it gets."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from collectors.config import SchemaRegistryConfig
from collectors.conventions import Conventions, RawRecord, normalize
from collectors.schemas.decoding import DECODED, FAILED, PENDING, RecordDecoder
from collectors.schemas.registry import RegistryClient
from collectors.schemas.wire import frame
from tests.conftest import free_port
from tests.schema_fixtures import ORDER_AVRO, Serializers, discount, order, payment

pytestmark = pytest.mark.kafka  # needs the session's real registry


@pytest.fixture
def topic() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def serializers(schema_registry_url: str, topic: str) -> Iterator[Serializers]:
    made = Serializers(schema_registry_url, topic)
    yield made
    made.close()


@pytest.fixture
def decoder(schema_registry_url: str) -> Iterator[RecordDecoder]:
    decoder = RecordDecoder(RegistryClient(SchemaRegistryConfig(url=schema_registry_url)))
    yield decoder
    decoder.close()


def test_avro_value_and_key_decode_and_feed_the_conventions(
    serializers: Serializers, decoder: RecordDecoder, topic: str
) -> None:
    value = serializers.value(serializers.avro, order("corr-avro-1"))
    key = serializers.key(serializers.avro_key, "order-77")
    event = normalize(RawRecord(topic, 0, 5, 0, key, value, []), Conventions(), decoder)
    assert (event.content_type, event.decode_state, event.decode_note) == (
        "avro-confluent",
        DECODED,
        None,
    )
    assert event.correlation_id == "corr-avro-1"  # $.metadata.correlationId inside Avro
    assert event.event_type == "OrderPlaced"
    assert json.loads(event.decoded_value or "")["amount"] == "79.90"
    assert json.loads(event.decoded_key or "") == "order-77"
    assert event.key_schema_id is not None and event.schema_id != event.key_schema_id
    assert event.value == value  # the bytes stay as they came


def test_protobuf_nested_message_indexes(
    serializers: Serializers, decoder: RecordDecoder, topic: str
) -> None:
    top = serializers.value(serializers.payment, payment("corr-pb-1"))
    assert top[5:7] == b"\x02\x02"  # message index [1]: the second top-level message
    event = normalize(RawRecord(topic, 0, 1, 0, None, top, []), Conventions(), decoder)
    assert (event.content_type, event.decode_state) == ("protobuf-confluent", DECODED)
    document = json.loads(event.decoded_value or "")
    assert document["amountCents"] == 7990 and document["status"] == "CAPTURED"
    assert document["capturedAt"] == "2026-11-30T00:53:20Z"
    assert event.correlation_id == "corr-pb-1"

    nested = serializers.value(serializers.discount, discount("corr-pb-2"))
    assert nested[5:9] == b"\x06\x02\x02\x00"  # [1, 1, 0]: PaymentCaptured.Line.Discount
    event = normalize(RawRecord(topic, 0, 2, 0, None, nested, []), Conventions(), decoder)
    assert json.loads(event.decoded_value or "")["percent"] == 15
    assert event.correlation_id == "corr-pb-2"


def test_json_schema_record(serializers: Serializers, decoder: RecordDecoder, topic: str) -> None:
    value = serializers.value(
        serializers.json,
        {"eventId": "e-j", "eventType": "CustomerRegistered", "correlationId": "corr-js"},
    )
    event = normalize(RawRecord(topic, 0, 1, 0, None, value, []), Conventions(), decoder)
    assert (event.content_type, event.decode_state) == ("json-schema-confluent", DECODED)
    assert (event.correlation_id, event.event_id) == ("corr-js", "e-j")


def test_the_registry_is_asked_once_per_schema_id(
    serializers: Serializers, decoder: RecordDecoder, topic: str
) -> None:
    values = [serializers.value(serializers.avro, order(f"c-{i}")) for i in range(50)]
    for value in values:
        assert decoder.decode(topic, "value", value).state == DECODED  # type: ignore[union-attr]
    assert decoder.registry is not None and decoder.registry.lookups == 1


def test_bad_frames_each_get_a_clear_state(
    serializers: Serializers, decoder: RecordDecoder, topic: str
) -> None:
    good = serializers.value(serializers.avro, order("c-bad"))  # registers topic-value

    def state(value: bytes) -> tuple[str, str]:
        result = decoder.decode(topic, "value", value)
        assert result is not None
        return result.state, result.note or ""

    assert state(b"\x00\x00\x01") == (
        FAILED,
        "truncated frame: 3 bytes, the wire format needs 5 (magic byte and 4-byte schema id)",
    )
    assert state(good[:5] + b"\x02\x06abc")[0] == FAILED  # the body is not this schema
    assert (
        "does not match the Avro schema" in state(good[:5] + b"\xff" * 3)[1]
        or "end before" in state(good[:5] + b"\xff" * 3)[1]
    )
    assert state(good + b"\x00")[1].endswith("1 bytes left after the Avro record: not this schema")
    wrong_magic = state(b'\x01{"orderId": 1}')
    assert wrong_magic[0] == FAILED
    assert wrong_magic[1].startswith(f"wrong magic byte 0x01: subject {topic}-value is registered")
    unknown = state(frame(9_999_999, b"\x02"))
    assert unknown[0] == PENDING and "schema 9999999 unavailable" in unknown[1]

    pb = serializers.value(serializers.payment, payment("c-pb"))
    out_of_range = pb[:5] + b"\x02\x0e" + pb[7:]  # message index [7]
    assert state(out_of_range) == (
        FAILED,
        f"schema {int.from_bytes(pb[1:5], 'big')}: message index [7] is not in the schema "
        "(2 top-level messages)",
    )


def test_json_and_text_are_not_touched(decoder: RecordDecoder, topic: str) -> None:
    assert decoder.decode(topic, "value", b'{"a": 1}') is None
    assert decoder.decode(topic, "value", (7).to_bytes(8, "big")) is None  # schema id 0


def test_registry_down_leaves_records_pending_and_is_not_asked_per_record(topic: str) -> None:
    port = free_port()
    decoder = RecordDecoder(
        RegistryClient(SchemaRegistryConfig(url=f"http://127.0.0.1:{port}", timeout_s=1))
    )
    first = decoder.decode(topic, "value", frame(3, b"\x02"))
    assert first is not None and first.state == PENDING
    assert first.note is not None and first.note.startswith(
        "schema 3 unavailable (registry unreachable"
    )
    started = time.monotonic()
    for _ in range(1000):
        assert decoder.decode(topic, "value", frame(4, b"\x02")).state == PENDING  # type: ignore[union-attr]
    assert time.monotonic() - started < 0.5  # the pause: no connection attempt per record
    assert decoder.registry_down is not None
    decoder.close()


def fake_registry(status: int, body: object) -> RecordDecoder:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(body).encode())

    config = SchemaRegistryConfig(url="http://registry.test")
    return RecordDecoder(RegistryClient(config, transport=httpx.MockTransport(handler)))


@pytest.mark.parametrize(
    ("status", "body", "state", "note"),
    [
        (401, {"error_code": 40101, "message": "no"}, PENDING,
         "schema 8 unavailable (registry refused the credentials (401))"),
        (500, {"error_code": 50001, "message": "boom"}, PENDING,
         "schema 8 unavailable (registry error 500: boom)"),
        (404, {"error_code": 40403, "message": "Schema 8 not found"}, PENDING,
         "schema 8 unavailable (Schema 8 not found (40403))"),
        (200, {"schema": json.dumps({"type": "record", "name": "X",
                                     "fields": [{"name": "a", "type": "nope"}]})},
         FAILED, "schema 8 cannot be used: not a valid Avro schema"),
        (200, {"schema": "syntax = \"proto3\"; message {", "schemaType": "PROTOBUF"}, FAILED,
         "schema 8 cannot be used: Protobuf schema does not compile"),
    ],
)  # fmt: skip
def test_registry_answers_give_per_record_states(
    status: int, body: object, state: str, note: str
) -> None:
    result = fake_registry(status, body).decode("t", "value", frame(8, b"\x02"))
    assert result is not None
    assert result.state == state
    assert result.note is not None and result.note.startswith(note)


def test_avro_schema_text_from_the_registry_is_the_one_registered(
    decoder: RecordDecoder, serializers: Serializers, topic: str
) -> None:
    value = serializers.value(serializers.avro, order("c-x"))
    assert decoder.registry is not None
    assert (
        json.loads(decoder.registry.schema_by_id(int.from_bytes(value[1:5], "big")).text)["name"]
        == ORDER_AVRO["name"]
    )
