"""Decode OTLP/HTTP trace exports (`POST /v1/traces`) into flat span records.

Pure logic: the HTTP route hands over the raw body and two headers, gets back
`SpanRecord`s or an `OtlpError` carrying the HTTP status to answer, and uses
`encode_response` / `encode_error` to build the body in the request's own format.

Decisions worth knowing:

* Both wire formats are accepted: binary protobuf (`application/x-protobuf`,
  `application/protobuf`) and OTLP/JSON (`application/json`). OTLP/JSON differs from
  the canonical protobuf JSON mapping: ids are hex, enums are integers, 64-bit integers
  are decimal strings (numbers are accepted too), unknown fields are ignored. Field names
  are read in lowerCamelCase as the specification requires; the original snake_case
  names are accepted as a fallback, like any protobuf JSON parser does, because being
  lenient costs nothing here. Ids sent base64-encoded (the canonical protobuf mapping,
  which some exporters emit by mistake) are recognised by their length and accepted.
* The body is limited to `max_bytes` before and after gzip decompression; the
  decompressor never produces more than the limit, so a gzip bomb costs at most that.
* Structural garbage (not protobuf, not JSON, `resourceSpans` not a list...) is a 400.
  A span with a bad trace id, span id, parent span id or timestamp is rejected alone and
  counted, the rest is kept: the answer is then a partial success.
* Attribute values become JSON-safe Python values: str, int, float, bool, None, list,
  dict. Bytes become `{"b64": "<standard base64>"}`. Non-finite doubles become the
  strings "NaN", "Infinity", "-Infinity" as in protobuf JSON. Strings are cut to 4 KiB
  (UTF-8), names to 1 KiB, nesting to `MAX_VALUE_DEPTH` containers, each attribute map to
  `MAX_ATTRIBUTES` keys and `ATTRIBUTE_MAP_BUDGET` bytes; what is cut is counted in the
  record's `dropped_*` fields together with what the sender itself reported dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

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

PROTOBUF_MEDIA_TYPE = "application/x-protobuf"
JSON_MEDIA_TYPE = "application/json"

WireFormat = Literal["protobuf", "json"]

_MEDIA_TYPES: dict[str, WireFormat] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
_MAX_UINT64 = (1 << 64) - 1
_MIN_INT64 = -(1 << 63)
_MAX_INT64 = (1 << 63) - 1
_DECIMAL = re.compile(r"-?[0-9]{1,20}")
_HEX = re.compile(r"[0-9a-fA-F]*")
_SPAN_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODE_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
# google.rpc.Code values for the HTTP statuses this receiver answers with.
_RPC_CODES = {400: 3, 404: 5, 413: 8, 415: 3, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


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


# --------------------------------------------------------------------------- entry points


def wire_format(content_type: str | None) -> WireFormat | None:
    """Which OTLP encoding a Content-Type header names, parameters ignored; None if neither."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return _MEDIA_TYPES.get(media_type)


def decode_traces_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int = MAX_BODY_BYTES,
) -> DecodeResult:
    """Decode an ExportTraceServiceRequest body; raises OtlpError (400, 413, 415)."""
    fmt = wire_format(content_type)
    if fmt is None:
        raise OtlpError(
            415,
            f"unsupported content type {_printable(content_type)}; "
            f"use {PROTOBUF_MEDIA_TYPE} or {JSON_MEDIA_TYPE}",
        )
    payload = _decoded_body(body, content_encoding, max_bytes)
    rejections: Counter[str] = Counter()
    if fmt == "protobuf":
        spans = _spans_from_protobuf(payload, rejections)
    else:
        spans = _spans_from_json(payload, rejections)
    rejected = sum(rejections.values())
    if not rejected:
        return DecodeResult(spans=spans)
    return DecodeResult(spans=spans, rejected=rejected, error_message=_summary(rejections))


def encode_response(result: DecodeResult, content_type: str | None) -> tuple[bytes, str]:
    """ExportTraceServiceResponse for a 200 answer, in the request's format.

    Returns (body, media type). Protobuf leaves `partial_success` unset on full success;
    JSON answers `{"partialSuccess": {}}` then, which clients read the same way.
    """
    partial = result.rejected > 0 or bool(result.error_message)
    if wire_format(content_type) == "protobuf":
        response = ExportTraceServiceResponse()
        if partial:
            response.partial_success.rejected_spans = max(0, min(result.rejected, _MAX_INT64))
            response.partial_success.error_message = result.error_message or ""
        return response.SerializeToString(), PROTOBUF_MEDIA_TYPE
    details: dict[str, str] = {}
    if partial:
        details["rejectedSpans"] = str(max(0, result.rejected))
        details["errorMessage"] = result.error_message or ""
    return _json_bytes({"partialSuccess": details}), JSON_MEDIA_TYPE


def encode_error(status: int, message: str, content_type: str | None) -> tuple[bytes, str]:
    """google.rpc.Status body for a 4xx/5xx answer; JSON when the request format is unknown."""
    code = _RPC_CODES.get(status, 2)  # 2 = UNKNOWN
    message = _cap_text(message.encode("utf-8", "replace").decode("utf-8"), MAX_STRING_BYTES)
    if wire_format(content_type) == "protobuf":
        text = message.encode("utf-8")
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
        return body, PROTOBUF_MEDIA_TYPE
    return _json_bytes({"code": code, "message": message}), JSON_MEDIA_TYPE


# --------------------------------------------------------------------------- body


def _decoded_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise OtlpError(413, f"request body larger than {max_bytes} bytes")
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _gunzip_limited(body, max_bytes)
    raise OtlpError(415, f"unsupported content encoding {_printable(content_encoding)}")


def _gunzip_limited(body: bytes, max_bytes: int) -> bytes:
    """Decompress gzip (one or more members) without ever holding more than max_bytes."""
    chunks: list[bytes] = []
    total = 0
    data = body
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof:
                piece = inflater.decompress(data, max_bytes + 1 - total)
                total += len(piece)
                if total > max_bytes:
                    raise OtlpError(413, f"decompressed body larger than {max_bytes} bytes")
                chunks.append(piece)
                data = inflater.unconsumed_tail
                if not piece and not data:
                    break
            if not inflater.eof:
                raise OtlpError(400, "truncated gzip body")
            data = inflater.unused_data
            if not data.strip(b"\x00"):
                break
    except zlib.error as exc:
        raise OtlpError(400, f"invalid gzip body: {exc}") from None
    return b"".join(chunks)


# --------------------------------------------------------------------------- shared helpers


class _SpanRejected(Exception):
    """Raised while reading one span; the span is counted as rejected with this reason."""


class _Budget:
    """Bytes an attribute map may still take; caps the work a hostile value can cause."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


_SKIP = object()  # a value that is dropped (malformed, or nested too deep)


def _cap_text(text: str, max_bytes: int) -> str:
    if len(text) * 4 <= max_bytes:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", "ignore")


def _too_long(text: str, max_bytes: int) -> bool:
    return len(text) > max_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > max_bytes


def _safe_float(number: float) -> float | str:
    if math.isfinite(number):
        return number
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def _bytes_value(raw: bytes, budget: _Budget) -> dict[str, str]:
    encoded = base64.b64encode(raw[: MAX_STRING_BYTES * 3 // 4]).decode("ascii")
    budget.left -= len(encoded) + 8
    return {"b64": encoded}


def _hex_id(raw: bytes, size: int) -> str | None:
    """Lowercase hex of a binary id, or None when its length is wrong or it is all zeros."""
    if len(raw) != size or not raw.strip(b"\x00"):
        return None
    return raw.hex()


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def _printable(text: str | None) -> str:
    return repr(_cap_text(text or "", 100))


def _summary(rejections: Counter[str]) -> str:
    parts = [f"{count} with {reason}" for reason, count in rejections.most_common()]
    total = sum(rejections.values())
    return f"rejected {total} span{'s' if total != 1 else ''}: " + "; ".join(parts)


def _string_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _finish(record: SpanRecord) -> SpanRecord:
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


# --------------------------------------------------------------------------- protobuf


def _spans_from_protobuf(payload: bytes, rejections: Counter[str]) -> list[SpanRecord]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(payload)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise OtlpError(400, f"body is not an ExportTraceServiceRequest: {exc}") from None
    spans: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource_attributes, _ = _proto_attributes(
            resource_spans.resource.attributes, ATTRIBUTE_MAP_BUDGET
        )
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name = scope.name or None
            scope_version = scope.version or None
            for span in scope_spans.spans:
                try:
                    record = _proto_span(span, resource_attributes)
                except _SpanRejected as rejected:
                    rejections[str(rejected)] += 1
                    continue
                record.scope_name = scope_name
                record.scope_version = scope_version
                spans.append(_finish(record))
    return spans


def _proto_span(span: Any, resource_attributes: dict[str, Any]) -> SpanRecord:
    trace_id = _hex_id(span.trace_id, 16)
    if trace_id is None:
        raise _SpanRejected("invalid trace id")
    span_id = _hex_id(span.span_id, 8)
    if span_id is None:
        raise _SpanRejected("invalid span id")
    parent_raw = span.parent_span_id
    parent_span_id = None
    if parent_raw.strip(b"\x00"):
        parent_span_id = _hex_id(parent_raw, 8)
        if parent_span_id is None:
            raise _SpanRejected("invalid parent span id")
    attributes, dropped_attributes = _proto_attributes(span.attributes, ATTRIBUTE_MAP_BUDGET)
    events, dropped_events = _proto_events(span.events) if span.events else ([], 0)
    links, dropped_links = _proto_links(span.links) if span.links else ([], 0)
    kind = span.kind
    status = span.status
    status_code = status.code
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=_cap_text(span.name, MAX_NAME_BYTES),
        kind=kind if 0 <= kind <= 5 else 0,
        service_name=None,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        duration_ns=0,
        status_code=status_code if 0 <= status_code <= 2 else 0,
        status_message=_cap_text(status.message, MAX_STRING_BYTES) or None,
        attributes=attributes,
        resource_attributes=dict(resource_attributes),
        events=events,
        links=links,
        trace_state=_cap_text(span.trace_state, MAX_STRING_BYTES) or None,
        dropped_attributes_count=span.dropped_attributes_count + dropped_attributes,
        dropped_events_count=span.dropped_events_count + dropped_events,
        dropped_links_count=span.dropped_links_count + dropped_links,
    )


def _proto_events(raw_events: Any) -> tuple[list[dict[str, Any]], int]:
    events = []
    for event in raw_events[:MAX_EVENTS]:
        event_attributes, _ = _proto_attributes(event.attributes, EVENT_ATTRIBUTE_BUDGET)
        events.append(
            {
                "name": _cap_text(event.name, MAX_NAME_BYTES),
                "time_ns": event.time_unix_nano,
                "attributes": event_attributes,
            }
        )
    return events, len(raw_events) - len(events)


def _proto_links(raw_links: Any) -> tuple[list[dict[str, Any]], int]:
    links = []
    for link in raw_links[:MAX_LINKS]:
        link_trace_id = _hex_id(link.trace_id, 16)
        link_span_id = _hex_id(link.span_id, 8)
        if link_trace_id is None or link_span_id is None:
            continue
        link_attributes, _ = _proto_attributes(link.attributes, EVENT_ATTRIBUTE_BUDGET)
        links.append(
            {"trace_id": link_trace_id, "span_id": link_span_id, "attributes": link_attributes}
        )
    return links, len(raw_links) - len(links)


def _proto_attributes(key_values: Any, budget_bytes: int) -> tuple[dict[str, Any], int]:
    """Attribute map from repeated KeyValue, within the caps; returns (map, dropped count).

    Strings and integers, nearly every attribute, are handled inline: this loop runs for
    every attribute of every span and decides the decoder's speed.
    """
    attributes: dict[str, Any] = {}
    dropped = 0
    left = budget_bytes
    for key_value in key_values:
        key = key_value.key
        if (
            not key
            or left <= 0
            or (len(attributes) >= MAX_ATTRIBUTES and key not in attributes)
            or (len(key) > MAX_KEY_BYTES // 4 and _too_long(key, MAX_KEY_BYTES))
        ):
            dropped += 1
            continue
        any_value = key_value.value
        which = any_value.WhichOneof("value")
        if which == "string_value":
            text = any_value.string_value
            if len(text) > MAX_STRING_BYTES // 4:
                text = _cap_text(text, MAX_STRING_BYTES)
            left -= len(key) + len(text) + 8
            attributes[key] = text
        elif which == "int_value":
            left -= len(key) + 8
            attributes[key] = any_value.int_value
        else:
            budget = _Budget(left - len(key))
            value = _proto_value(any_value, 0, budget)
            left = budget.left
            if value is _SKIP:
                dropped += 1
            else:
                attributes[key] = value
    return attributes, dropped


def _proto_value(value: Any, depth: int, budget: _Budget) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        text = _cap_text(value.string_value, MAX_STRING_BYTES)
        budget.left -= len(text) + 8
        return text
    budget.left -= 8
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return _safe_float(value.double_value)
    if which == "bytes_value":
        return _bytes_value(value.bytes_value, budget)
    if which is None:
        return None
    if depth >= MAX_VALUE_DEPTH:
        return _SKIP
    if which == "array_value":
        items = []
        for item in value.array_value.values[:MAX_VALUE_ITEMS]:
            if budget.left <= 0:
                break
            converted = _proto_value(item, depth + 1, budget)
            if converted is not _SKIP:
                items.append(converted)
        return items
    if which == "kvlist_value":
        mapping: dict[str, Any] = {}
        for entry in value.kvlist_value.values[:MAX_VALUE_ITEMS]:
            if budget.left <= 0:
                break
            if _too_long(entry.key, MAX_KEY_BYTES):
                continue
            budget.left -= len(entry.key)
            converted = _proto_value(entry.value, depth + 1, budget)
            if converted is not _SKIP:
                mapping[entry.key] = converted
        return mapping
    return _SKIP


# --------------------------------------------------------------------------- OTLP/JSON
#
# Policy: ids and timestamps place a span in its trace, so a malformed one rejects the
# span; a malformed event, link or attribute is dropped and counted, the span is kept.


def _get(message: dict[str, Any], camel: str, snake: str) -> Any:
    value = message.get(camel)
    if value is None:
        value = message.get(snake)
    return value


def _json_message(value: Any, what: str) -> dict[str, Any]:
    """A nested message above span level: absent is empty, anything but an object is a 400."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpError(400, f"{what} must be a JSON object")
    return value


def _json_repeated(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(400, f"{what} must be a JSON array")
    return value


def _spans_from_json(payload: bytes, rejections: Counter[str]) -> list[SpanRecord]:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise OtlpError(400, f"body is not valid JSON: {_cap_text(str(exc), 200)}") from None
    if not isinstance(document, dict):
        raise OtlpError(400, "body must be a JSON object (ExportTraceServiceRequest)")
    spans: list[SpanRecord] = []
    all_resource_spans = _get(document, "resourceSpans", "resource_spans")
    for resource_spans in _json_repeated(all_resource_spans, "resourceSpans"):
        resource_spans = _json_message(resource_spans, "resourceSpans[]")
        resource = _json_message(resource_spans.get("resource"), "resource")
        resource_attributes, _ = _json_attributes(resource.get("attributes"), ATTRIBUTE_MAP_BUDGET)
        all_scope_spans = _get(resource_spans, "scopeSpans", "scope_spans")
        for scope_spans in _json_repeated(all_scope_spans, "scopeSpans"):
            scope_spans = _json_message(scope_spans, "scopeSpans[]")
            scope = _json_message(scope_spans.get("scope"), "scope")
            scope_name = _json_text(scope.get("name"), MAX_NAME_BYTES)
            scope_version = _json_text(scope.get("version"), MAX_NAME_BYTES)
            for span in _json_repeated(scope_spans.get("spans"), "spans"):
                try:
                    record = _json_span(span, resource_attributes)
                except _SpanRejected as rejected:
                    rejections[str(rejected)] += 1
                    continue
                record.scope_name = scope_name
                record.scope_version = scope_version
                spans.append(_finish(record))
    return spans


def _json_string(text: str, max_bytes: int) -> str:
    """A JSON string made safe to store: lone surrogates replaced, length capped."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return _cap_text(text, max_bytes)


def _json_text(value: Any, max_bytes: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _json_string(value, max_bytes)


_BASE64_ID = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _json_id(value: Any, size: int) -> str | None:
    """Lowercase hex of a JSON id (hex, or base64 by mistake); None when invalid or all zeros."""
    if not isinstance(value, str):
        return None
    if len(value) == size * 2:
        if not _HEX.fullmatch(value) or not value.strip("0"):
            return None
        return value.lower()
    unpadded = value.rstrip("=")
    if len(unpadded) != math.ceil(size * 4 / 3) or not _BASE64_ID.fullmatch(value):
        return None
    try:
        raw = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return None
    return _hex_id(raw, size)


def _json_parent_id(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, str) and not value.strip("0")):
        return None
    parent = _json_id(value, 8)
    if parent is None:
        raise _SpanRejected("invalid parent span id")
    return parent


def _json_int(value: Any, low: int, high: int) -> int | None:
    """Protobuf-JSON integer: a number or a decimal string, within [low, high]."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if low <= number <= high else None


def _json_timestamp(value: Any) -> int | None:
    """Nanoseconds since the epoch; absent is 0, malformed is None."""
    if value is None:
        return 0
    return _json_int(value, 0, _MAX_UINT64)


def _json_count(value: Any) -> int:
    if value is None:
        return 0
    return _json_int(value, 0, _MAX_UINT64) or 0


def _json_enum(value: Any, names: dict[str, int], high: int) -> int:
    """Enums are integers in OTLP/JSON; names are tolerated; out of range is 0 (unset)."""
    number = names.get(value, 0) if isinstance(value, str) else _json_int(value, 0, high)
    return number if number is not None else 0


def _json_span(span: Any, resource_attributes: dict[str, Any]) -> SpanRecord:
    if not isinstance(span, dict):
        raise _SpanRejected("span that is not an object")
    trace_id = _json_id(_get(span, "traceId", "trace_id"), 16)
    if trace_id is None:
        raise _SpanRejected("invalid trace id")
    span_id = _json_id(_get(span, "spanId", "span_id"), 8)
    if span_id is None:
        raise _SpanRejected("invalid span id")
    parent_span_id = _json_parent_id(_get(span, "parentSpanId", "parent_span_id"))
    start_ns = _json_timestamp(_get(span, "startTimeUnixNano", "start_time_unix_nano"))
    end_ns = _json_timestamp(_get(span, "endTimeUnixNano", "end_time_unix_nano"))
    if start_ns is None or end_ns is None:
        raise _SpanRejected("invalid timestamp")
    attributes, dropped_attributes = _json_attributes(span.get("attributes"), ATTRIBUTE_MAP_BUDGET)
    events, dropped_events = _json_events(span.get("events"))
    links, dropped_links = _json_links(span.get("links"))
    status = span.get("status")
    if not isinstance(status, dict):
        status = {}
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=_json_text(span.get("name"), MAX_NAME_BYTES) or "",
        kind=_json_enum(span.get("kind"), _SPAN_KIND_NAMES, 5),
        service_name=None,
        start_ns=start_ns,
        end_ns=end_ns,
        duration_ns=0,
        status_code=_json_enum(status.get("code"), _STATUS_CODE_NAMES, 2),
        status_message=_json_text(status.get("message"), MAX_STRING_BYTES),
        attributes=attributes,
        resource_attributes=dict(resource_attributes),
        events=events,
        links=links,
        trace_state=_json_text(_get(span, "traceState", "trace_state"), MAX_STRING_BYTES),
        dropped_attributes_count=dropped_attributes
        + _json_count(_get(span, "droppedAttributesCount", "dropped_attributes_count")),
        dropped_events_count=dropped_events
        + _json_count(_get(span, "droppedEventsCount", "dropped_events_count")),
        dropped_links_count=dropped_links
        + _json_count(_get(span, "droppedLinksCount", "dropped_links_count")),
    )


def _json_events(raw_events: Any) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(raw_events, list):
        return [], 0 if raw_events is None else 1
    events = []
    for event in raw_events[:MAX_EVENTS]:
        time_ns = None
        if isinstance(event, dict):
            time_ns = _json_timestamp(_get(event, "timeUnixNano", "time_unix_nano"))
        if time_ns is None:
            continue
        event_attributes, _ = _json_attributes(event.get("attributes"), EVENT_ATTRIBUTE_BUDGET)
        events.append(
            {
                "name": _json_text(event.get("name"), MAX_NAME_BYTES) or "",
                "time_ns": time_ns,
                "attributes": event_attributes,
            }
        )
    return events, len(raw_events) - len(events)


def _json_links(raw_links: Any) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(raw_links, list):
        return [], 0 if raw_links is None else 1
    links = []
    for link in raw_links[:MAX_LINKS]:
        if not isinstance(link, dict):
            continue
        link_trace_id = _json_id(_get(link, "traceId", "trace_id"), 16)
        link_span_id = _json_id(_get(link, "spanId", "span_id"), 8)
        if link_trace_id is None or link_span_id is None:
            continue
        link_attributes, _ = _json_attributes(link.get("attributes"), EVENT_ATTRIBUTE_BUDGET)
        links.append(
            {"trace_id": link_trace_id, "span_id": link_span_id, "attributes": link_attributes}
        )
    return links, len(raw_links) - len(links)


def _json_attributes(key_values: Any, budget_bytes: int) -> tuple[dict[str, Any], int]:
    """Attribute map from a JSON KeyValue array, within the caps; returns (map, dropped)."""
    if not isinstance(key_values, list):
        return {}, 0 if key_values is None else 1
    attributes: dict[str, Any] = {}
    dropped = 0
    budget = _Budget(budget_bytes)
    for key_value in key_values:
        key = key_value.get("key") if isinstance(key_value, dict) else None
        if not isinstance(key, str) or not key or budget.left <= 0 or _too_long(key, MAX_KEY_BYTES):
            dropped += 1
            continue
        key = _json_string(key, MAX_KEY_BYTES)
        if len(attributes) >= MAX_ATTRIBUTES and key not in attributes:
            dropped += 1
            continue
        budget.left -= len(key)
        value = _json_value(key_value.get("value"), 0, budget)
        if value is _SKIP:
            dropped += 1
            continue
        attributes[key] = value
    return attributes, dropped


def _json_value(value: Any, depth: int, budget: _Budget) -> Any:
    """AnyValue in OTLP/JSON; _SKIP when malformed or nested too deep."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return _SKIP
    budget.left -= 8
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value")
        if not isinstance(text, str):
            return _SKIP
        text = _json_string(text, MAX_STRING_BYTES)
        budget.left -= len(text)
        return text
    if "intValue" in value or "int_value" in value:
        number = _json_int(_get(value, "intValue", "int_value"), _MIN_INT64, _MAX_INT64)
        return _SKIP if number is None else number
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        return flag if isinstance(flag, bool) else _SKIP
    if "doubleValue" in value or "double_value" in value:
        return _json_double(_get(value, "doubleValue", "double_value"))
    if "bytesValue" in value or "bytes_value" in value:
        return _json_bytes_value(_get(value, "bytesValue", "bytes_value"), budget)
    if "arrayValue" in value or "array_value" in value:
        return _json_container(_get(value, "arrayValue", "array_value"), depth, budget, False)
    if "kvlistValue" in value or "kvlist_value" in value:
        return _json_container(_get(value, "kvlistValue", "kvlist_value"), depth, budget, True)
    return None


def _json_bytes_value(encoded: Any, budget: _Budget) -> Any:
    if not isinstance(encoded, str):
        return _SKIP
    chunk = encoded.rstrip("=")[: MAX_STRING_BYTES * 2]
    try:
        raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return _SKIP
    return _bytes_value(raw, budget)


def _json_container(container: Any, depth: int, budget: _Budget, keyed: bool) -> Any:
    if depth >= MAX_VALUE_DEPTH:
        return _SKIP
    if container is None:
        container = {}
    entries = container.get("values") if isinstance(container, dict) else _SKIP
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        return _SKIP
    items: list[Any] = []
    mapping: dict[str, Any] = {}
    for entry in entries[:MAX_VALUE_ITEMS]:
        if budget.left <= 0:
            break
        if not keyed:
            converted = _json_value(entry, depth + 1, budget)
            if converted is not _SKIP:
                items.append(converted)
            continue
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or _too_long(key, MAX_KEY_BYTES):
            continue
        key = _json_string(key, MAX_KEY_BYTES)
        budget.left -= len(key)
        converted = _json_value(entry.get("value"), depth + 1, budget)
        if converted is not _SKIP:
            mapping[key] = converted
    return mapping if keyed else items


def _json_double(value: Any) -> Any:
    """A double: a JSON number, or a string such as "1.5", "NaN", "Infinity"."""
    if isinstance(value, bool):
        return _SKIP
    if isinstance(value, int | float):
        try:
            return _safe_float(float(value))
        except OverflowError:
            return _SKIP
    if isinstance(value, str) and 0 < len(value) <= 64:
        try:
            return _safe_float(float(value))
        except ValueError:
            return _SKIP
    return _SKIP
