"""OTLP/JSON trace exports (`application/json`) into span records: lowerCamelCase names
(snake_case accepted), hex ids (base64 accepted), integer enums (names accepted), 64-bit
integers as decimal strings (numbers accepted)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from typing import Any

from collectors.otlp_model import (
    ATTRIBUTE_MAP_BUDGET,
    EVENT_ATTRIBUTE_BUDGET,
    MAX_ATTRIBUTES,
    MAX_EVENTS,
    MAX_INT64,
    MAX_KEY_BYTES,
    MAX_LINKS,
    MAX_NAME_BYTES,
    MAX_STRING_BYTES,
    MAX_UINT64,
    MAX_VALUE_DEPTH,
    MAX_VALUE_ITEMS,
    MIN_INT64,
    SKIP,
    Budget,
    OtlpError,
    SpanRecord,
    SpanRejected,
    bytes_attribute,
    cap_text,
    finish_record,
    hex_id,
    safe_float,
    too_long,
)

DECIMAL = re.compile(r"-?[0-9]{1,20}")
HEX = re.compile(r"[0-9a-fA-F]*")
SPAN_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODE_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


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


def spans_from_json(payload: bytes, rejections: Counter[str]) -> list[SpanRecord]:
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise OtlpError(400, f"body is not valid JSON: {cap_text(str(exc), 200)}") from None
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
                except SpanRejected as rejected:
                    rejections[str(rejected)] += 1
                    continue
                record.scope_name = scope_name
                record.scope_version = scope_version
                spans.append(finish_record(record))
    return spans


def _json_string(text: str, max_bytes: int) -> str:
    """A JSON string made safe to store: lone surrogates replaced, length capped."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return cap_text(text, max_bytes)


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
        if not HEX.fullmatch(value) or not value.strip("0"):
            return None
        return value.lower()
    unpadded = value.rstrip("=")
    if len(unpadded) != math.ceil(size * 4 / 3) or not _BASE64_ID.fullmatch(value):
        return None
    try:
        raw = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return None
    return hex_id(raw, size)


def _json_parent_id(value: Any) -> str | None:
    if value is None or value == "" or (isinstance(value, str) and not value.strip("0")):
        return None
    parent = _json_id(value, 8)
    if parent is None:
        raise SpanRejected("invalid parent span id")
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
    elif isinstance(value, str) and DECIMAL.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if low <= number <= high else None


def _json_timestamp(value: Any) -> int | None:
    """Nanoseconds since the epoch; absent is 0, malformed is None."""
    if value is None:
        return 0
    return _json_int(value, 0, MAX_UINT64)


def _json_count(value: Any) -> int:
    if value is None:
        return 0
    return _json_int(value, 0, MAX_UINT64) or 0


def _json_enum(value: Any, names: dict[str, int], high: int) -> int:
    """Enums are integers in OTLP/JSON; names are tolerated; out of range is 0 (unset)."""
    number = names.get(value, 0) if isinstance(value, str) else _json_int(value, 0, high)
    return number if number is not None else 0


def _json_span(span: Any, resource_attributes: dict[str, Any]) -> SpanRecord:
    if not isinstance(span, dict):
        raise SpanRejected("span that is not an object")
    trace_id = _json_id(_get(span, "traceId", "trace_id"), 16)
    if trace_id is None:
        raise SpanRejected("invalid trace id")
    span_id = _json_id(_get(span, "spanId", "span_id"), 8)
    if span_id is None:
        raise SpanRejected("invalid span id")
    parent_span_id = _json_parent_id(_get(span, "parentSpanId", "parent_span_id"))
    start_ns = _json_timestamp(_get(span, "startTimeUnixNano", "start_time_unix_nano"))
    end_ns = _json_timestamp(_get(span, "endTimeUnixNano", "end_time_unix_nano"))
    if start_ns is None or end_ns is None:
        raise SpanRejected("invalid timestamp")
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
        kind=_json_enum(span.get("kind"), SPAN_KIND_NAMES, 5),
        service_name=None,
        start_ns=start_ns,
        end_ns=end_ns,
        duration_ns=0,
        status_code=_json_enum(status.get("code"), STATUS_CODE_NAMES, 2),
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
    budget = Budget(budget_bytes)
    for key_value in key_values:
        key = key_value.get("key") if isinstance(key_value, dict) else None
        if not isinstance(key, str) or not key or budget.left <= 0 or too_long(key, MAX_KEY_BYTES):
            dropped += 1
            continue
        key = _json_string(key, MAX_KEY_BYTES)
        if len(attributes) >= MAX_ATTRIBUTES and key not in attributes:
            dropped += 1
            continue
        budget.left -= len(key)
        value = _json_value(key_value.get("value"), 0, budget)
        if value is SKIP:
            dropped += 1
            continue
        attributes[key] = value
    return attributes, dropped


def _json_value(value: Any, depth: int, budget: Budget) -> Any:
    """AnyValue in OTLP/JSON; SKIP when malformed or nested too deep."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return SKIP
    budget.left -= 8
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value")
        if not isinstance(text, str):
            return SKIP
        text = _json_string(text, MAX_STRING_BYTES)
        budget.left -= len(text)
        return text
    if "intValue" in value or "int_value" in value:
        number = _json_int(_get(value, "intValue", "int_value"), MIN_INT64, MAX_INT64)
        return SKIP if number is None else number
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        return flag if isinstance(flag, bool) else SKIP
    if "doubleValue" in value or "double_value" in value:
        return _json_double(_get(value, "doubleValue", "double_value"))
    if "bytesValue" in value or "bytes_value" in value:
        return _json_bytes_value(_get(value, "bytesValue", "bytes_value"), budget)
    if "arrayValue" in value or "array_value" in value:
        return _json_container(_get(value, "arrayValue", "array_value"), depth, budget, False)
    if "kvlistValue" in value or "kvlist_value" in value:
        return _json_container(_get(value, "kvlistValue", "kvlist_value"), depth, budget, True)
    return None


def _json_bytes_value(encoded: Any, budget: Budget) -> Any:
    if not isinstance(encoded, str):
        return SKIP
    chunk = encoded.rstrip("=")[: MAX_STRING_BYTES * 2]
    try:
        raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        return SKIP
    return bytes_attribute(raw, budget)


def _json_container(container: Any, depth: int, budget: Budget, keyed: bool) -> Any:
    if depth >= MAX_VALUE_DEPTH:
        return SKIP
    if container is None:
        container = {}
    entries = container.get("values") if isinstance(container, dict) else SKIP
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        return SKIP
    items: list[Any] = []
    mapping: dict[str, Any] = {}
    for entry in entries[:MAX_VALUE_ITEMS]:
        if budget.left <= 0:
            break
        if not keyed:
            converted = _json_value(entry, depth + 1, budget)
            if converted is not SKIP:
                items.append(converted)
            continue
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or too_long(key, MAX_KEY_BYTES):
            continue
        key = _json_string(key, MAX_KEY_BYTES)
        budget.left -= len(key)
        converted = _json_value(entry.get("value"), depth + 1, budget)
        if converted is not SKIP:
            mapping[key] = converted
    return mapping if keyed else items


def _json_double(value: Any) -> Any:
    """A double: a JSON number, or a string such as "1.5", "NaN", "Infinity"."""
    if isinstance(value, bool):
        return SKIP
    if isinstance(value, int | float):
        try:
            return safe_float(float(value))
        except OverflowError:
            return SKIP
    if isinstance(value, str) and 0 < len(value) <= 64:
        try:
            return safe_float(float(value))
        except ValueError:
            return SKIP
    return SKIP
