"""The OTLP model both decoders fill: `SpanRecord` (one span, flattened), the limits that
bound what a sender can make us keep, and the helpers both decoders share (collectors/otlp.py
explains the decisions)."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_NAME_BYTES = 1024
MAX_STRING_BYTES = 4096
MAX_KEY_BYTES = 256
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128
MAX_LINKS = 128
MAX_VALUE_DEPTH = 4
MAX_VALUE_ITEMS = 256
ATTRIBUTE_MAP_BUDGET = 64 * 1024
EVENT_ATTRIBUTE_BUDGET = 8 * 1024


MAX_UINT64 = (1 << 64) - 1
MIN_INT64 = -(1 << 63)
MAX_INT64 = (1 << 63) - 1


class OtlpError(Exception):
    """A request that cannot be accepted at all; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class SpanRecord:
    """One span, flattened: ids in lowercase hex, times in Unix nanoseconds, JSON-safe maps.

    `kind` follows OTLP SpanKind (0 unspecified .. 5 consumer), `status_code` 0 unset,
    1 ok, 2 error; out-of-range numbers from the sender become 0. Events are
    `{name, time_ns, attributes}`, links `{trace_id, span_id, attributes}`.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    service_name: str | None
    start_ns: int
    end_ns: int
    duration_ns: int
    status_code: int
    status_message: str | None
    attributes: dict[str, Any]
    resource_attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    trace_state: str | None = None
    scope_name: str | None = None
    scope_version: str | None = None
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    # Kafka coordinates read from the messaging attributes (current and older names).
    messaging_system: str | None = None
    messaging_operation: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    consumer_group: str | None = None
    message_key: str | None = None
    message_id: str | None = None
    batch_count: int | None = None
    tombstone: bool | None = None


@dataclass(slots=True)
class DecodeResult:
    """Spans kept, and how many were rejected and why (for the partial-success answer)."""

    spans: list[SpanRecord]
    rejected: int = 0
    error_message: str | None = None


class SpanRejected(Exception):
    """Raised while reading one span; the span is counted as rejected with this reason."""


class Budget:
    """Bytes an attribute map may still take; caps the work a hostile value can cause."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


SKIP = object()  # a value that is dropped (malformed, or nested too deep)


def cap_text(text: str, max_bytes: int) -> str:
    if len(text) * 4 <= max_bytes:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


def too_long(text: str, max_bytes: int) -> bool:
    return len(text) > max_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > max_bytes


def safe_float(number: float) -> float | str:
    if math.isfinite(number):
        return number
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def bytes_attribute(raw: bytes, budget: Budget) -> dict[str, str]:
    encoded = base64.b64encode(raw[: MAX_STRING_BYTES * 3 // 4]).decode("ascii")
    budget.left -= len(encoded) + 8
    return {"b64": encoded}


def hex_id(raw: bytes, size: int) -> str | None:
    """Lowercase hex of a binary id, or None when its length is wrong or it is all zeros."""
    if len(raw) != size or not raw.strip(b"\x00"):
        return None
    return raw.hex()


def _string_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def finish_record(record: SpanRecord) -> SpanRecord:
    """Fill the derived fields: service name, duration and the Kafka coordinates."""
    record.duration_ns = max(0, record.end_ns - record.start_ns)
    service = record.resource_attributes.get("service.name")
    record.service_name = _string_or_none(service)
    attributes = record.attributes
    if any(key.startswith("messaging.") for key in attributes):
        _read_messaging(record, attributes)
    return record


def _first(attributes: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


def _non_negative_int(value: Any, max_digits: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and 0 < len(value) <= max_digits and value.isascii():
        return int(value) if value.isdigit() else None
    return None


def _read_messaging(record: SpanRecord, attributes: dict[str, Any]) -> None:
    system = _string_or_none(attributes.get("messaging.system"))
    record.messaging_system = system.lower() if system else None
    operation = _string_or_none(
        _first(
            attributes,
            "messaging.operation.name",
            "messaging.operation.type",
            "messaging.operation",
        )
    )
    if operation:
        record.messaging_operation = operation.strip().lower()[:64] or None
    record.topic = _string_or_none(
        _first(
            attributes,
            "messaging.destination.name",
            "messaging.destination",
            "messaging.source.name",
        )
    )
    record.partition = _non_negative_int(
        _first(
            attributes,
            "messaging.destination.partition.id",
            "messaging.kafka.destination.partition",
            "messaging.kafka.partition",
            "messaging.kafka.source.partition",
        ),
        10,
    )
    record.offset = _non_negative_int(
        _first(attributes, "messaging.kafka.offset", "messaging.kafka.message.offset"), 20
    )
    record.consumer_group = _string_or_none(
        _first(
            attributes,
            "messaging.consumer.group.name",
            "messaging.kafka.consumer.group",
            "messaging.kafka.consumer_group",
        )
    )
    key = _first(attributes, "messaging.kafka.message.key", "messaging.kafka.message_key")
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    record.message_key = key if isinstance(key, str) else None
    record.message_id = _string_or_none(
        _first(attributes, "messaging.message.id", "messaging.message_id")
    )
    record.batch_count = _non_negative_int(attributes.get("messaging.batch.message_count"), 10)
    tombstone = _first(attributes, "messaging.kafka.message.tombstone", "messaging.kafka.tombstone")
    record.tombstone = tombstone if isinstance(tombstone, bool) else None
