"""OTLP trace exports in binary protobuf (`application/x-protobuf`) into span records."""

from __future__ import annotations

from collections import Counter
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from collectors.otlp_model import (
    ATTRIBUTE_MAP_BUDGET,
    EVENT_ATTRIBUTE_BUDGET,
    MAX_ATTRIBUTES,
    MAX_EVENTS,
    MAX_KEY_BYTES,
    MAX_LINKS,
    MAX_NAME_BYTES,
    MAX_STRING_BYTES,
    MAX_VALUE_DEPTH,
    MAX_VALUE_ITEMS,
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


def spans_from_protobuf(payload: bytes, rejections: Counter[str]) -> list[SpanRecord]:
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
                except SpanRejected as rejected:
                    rejections[str(rejected)] += 1
                    continue
                record.scope_name = scope_name
                record.scope_version = scope_version
                spans.append(finish_record(record))
    return spans


def _proto_span(span: Any, resource_attributes: dict[str, Any]) -> SpanRecord:
    trace_id = hex_id(span.trace_id, 16)
    if trace_id is None:
        raise SpanRejected("invalid trace id")
    span_id = hex_id(span.span_id, 8)
    if span_id is None:
        raise SpanRejected("invalid span id")
    parent_raw = span.parent_span_id
    parent_span_id = None
    if parent_raw.strip(b"\x00"):
        parent_span_id = hex_id(parent_raw, 8)
        if parent_span_id is None:
            raise SpanRejected("invalid parent span id")
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
        name=cap_text(span.name, MAX_NAME_BYTES),
        kind=kind if 0 <= kind <= 5 else 0,
        service_name=None,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        duration_ns=0,
        status_code=status_code if 0 <= status_code <= 2 else 0,
        status_message=cap_text(status.message, MAX_STRING_BYTES) or None,
        attributes=attributes,
        resource_attributes=dict(resource_attributes),
        events=events,
        links=links,
        trace_state=cap_text(span.trace_state, MAX_STRING_BYTES) or None,
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
                "name": cap_text(event.name, MAX_NAME_BYTES),
                "time_ns": event.time_unix_nano,
                "attributes": event_attributes,
            }
        )
    return events, len(raw_events) - len(events)


def _proto_links(raw_links: Any) -> tuple[list[dict[str, Any]], int]:
    links = []
    for link in raw_links[:MAX_LINKS]:
        link_trace_id = hex_id(link.trace_id, 16)
        link_span_id = hex_id(link.span_id, 8)
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
            or (len(key) > MAX_KEY_BYTES // 4 and too_long(key, MAX_KEY_BYTES))
        ):
            dropped += 1
            continue
        any_value = key_value.value
        which = any_value.WhichOneof("value")
        if which == "string_value":
            text = any_value.string_value
            if len(text) > MAX_STRING_BYTES // 4:
                text = cap_text(text, MAX_STRING_BYTES)
            left -= len(key) + len(text) + 8
            attributes[key] = text
        elif which == "int_value":
            left -= len(key) + 8
            attributes[key] = any_value.int_value
        else:
            budget = Budget(left - len(key))
            value = _proto_value(any_value, 0, budget)
            left = budget.left
            if value is SKIP:
                dropped += 1
            else:
                attributes[key] = value
    return attributes, dropped


def _proto_value(value: Any, depth: int, budget: Budget) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        text = cap_text(value.string_value, MAX_STRING_BYTES)
        budget.left -= len(text) + 8
        return text
    budget.left -= 8
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return safe_float(value.double_value)
    if which == "bytes_value":
        return bytes_attribute(value.bytes_value, budget)
    if which is None:
        return None
    if depth >= MAX_VALUE_DEPTH:
        return SKIP
    if which == "array_value":
        items = []
        for item in value.array_value.values[:MAX_VALUE_ITEMS]:
            if budget.left <= 0:
                break
            converted = _proto_value(item, depth + 1, budget)
            if converted is not SKIP:
                items.append(converted)
        return items
    if which == "kvlist_value":
        mapping: dict[str, Any] = {}
        for entry in value.kvlist_value.values[:MAX_VALUE_ITEMS]:
            if budget.left <= 0:
                break
            if too_long(entry.key, MAX_KEY_BYTES):
                continue
            budget.left -= len(entry.key)
            converted = _proto_value(entry.value, depth + 1, budget)
            if converted is not SKIP:
                mapping[entry.key] = converted
        return mapping
    return SKIP
