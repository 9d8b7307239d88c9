"""Events: search across all topics, event detail, and the live tail.

Pages: /events, /events/{cluster}/{topic}/{partition}/{offset}; /events/tail streams new
rows as server-sent events. JSON twins: /api/events and /api/events/{cluster}/...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, NotRequired
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response, StreamingResponse
from typing_extensions import TypedDict

from collectors.index.identity import search_key
from console.auth.roles import VIEWER
from console.masking import MaskingPolicy
from console.payload_view import (
    bytes_for_json,
    decoded_view,
    display_key,
    header_rows,
    headers_for_json,
    parsed_json,
    payload_view,
)
from console.state import AppState
from console.stores import events as event_store
from console.stores import masking as masking_store
from console.stores import schemas as schema_store
from console.stores.events import (
    MAX_FILTER_CHARS,
    MAX_LIMIT,
    EventFilter,
    SearchError,
    SearchResult,
)
from console.stores.masking import masker_for
from console.views.requests import record_coordinates
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, SelfLink, enum, integer, p, q, text

TAIL_POLL_S = 1.0
TAIL_KEEP_ROWS = 200  # the live tail shows the newest rows only
TAIL_MAX_S = 30 * 60  # a browser reconnects by itself after this


class BytesJson(TypedDict):
    """A byte string: `text` when it is UTF-8, else `b64`; never lossy."""

    size: int
    text: NotRequired[str]
    b64: NotRequired[str]


class DlqJson(TypedDict):
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    error_class: str | None
    error_message: str | None
    attempts: int | None
    format: str | None
    stacktrace: NotRequired[str | None]


class SchemaRefJson(TypedDict):
    """A registry schema a record was written with, and the subjects it is registered in."""

    part: str  # value or key
    schema_id: int
    subjects: list[dict[str, Any]]  # {subject, version, link}


class EventJson(TypedDict):
    """One indexed record; `headers`, `value` and the decoded forms only where one record is
    asked for. `decode_state` is null for records no schema describes, else decoded,
    pending (the registry could not answer yet) or failed (`decode_note` says why)."""

    cluster: str
    topic: str
    partition: int
    offset: int
    timestamp: str
    timestamp_ms: int
    key: BytesJson | None
    value_size: int
    value_truncated: bool
    tombstone: bool
    content_type: str | None
    schema_id: int | None
    key_schema_id: int | None
    decode_state: str | None
    decode_note: str | None
    event_id: str | None
    event_type: str | None
    source: str | None
    correlation_id: str | None
    causation_id: str | None
    trace_id: str | None
    span_id: str | None
    saga_id: str | None
    dlq: DlqJson | None
    links: SelfLink
    headers: NotRequired[list[Any]]
    value: NotRequired[BytesJson | None]
    value_withheld: NotRequired[bool]  # masking hides the raw bytes of a decoded record
    decoded_value: NotRequired[Any]
    decoded_key: NotRequired[Any]
    schemas: NotRequired[list[SchemaRefJson]]


class EventsJson(TypedDict):
    events: list[EventJson]
    limit: int
    next_cursor: str | None
    scan_capped_at: int | None


def event_json(row: Mapping[str, Any], *, full: bool = False) -> EventJson:
    body = EventJson(
        cluster=row["cluster"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        timestamp=event_store.format_time(row["timestamp_ms"]),
        timestamp_ms=row["timestamp_ms"],
        key=bytes_for_json(row["key"]),  # type: ignore[typeddict-item]
        value_size=row["value_size"],
        value_truncated=row["value_truncated"],
        tombstone=row["is_tombstone"],
        content_type=row["content_type"],
        schema_id=row["schema_id"],
        key_schema_id=row["key_schema_id"],
        decode_state=row["decode_state"],
        decode_note=row["decode_note"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        source=row["source"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        saga_id=row["saga_id"],
        dlq=None,
        links=SelfLink(self=event_path(row, api=True)),
    )
    if row["is_dlq"]:
        body["dlq"] = DlqJson(
            original_topic=row["dlq_original_topic"],
            original_partition=row["dlq_original_partition"],
            original_offset=row["dlq_original_offset"],
            error_class=row["dlq_error_class"],
            error_message=row["dlq_error_message"],
            attempts=row["dlq_attempts"],
            format=row["dlq_format"],
        )
    if full:
        body["headers"] = headers_for_json(row["headers"])
        body["value"] = bytes_for_json(row["value"])  # type: ignore[typeddict-item]
        if row.get("value_withheld"):
            body["value_withheld"] = True
        body["decoded_value"] = parsed_json(row.get("decoded_value"))
        body["decoded_key"] = parsed_json(row["decoded_key"])
        if body["dlq"] is not None:
            body["dlq"]["stacktrace"] = row["dlq_stacktrace"]
    return body


def event_path(row: Mapping[str, Any], *, api: bool = False) -> str:
    return urls.event(row["cluster"], row["topic"], row["partition"], row["offset"], api=api)


def _filter_or_400(call: Call) -> EventFilter:
    try:
        return event_store.parse_filter(call.query)
    except SearchError as exc:
        raise HTTPException(400, str(exc)) from None


async def events_page(call: Call) -> Reply | Response:
    try:
        f = event_store.parse_filter(call.query)
        error = None
    except SearchError as exc:
        if call.api:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        f, error = EventFilter(), str(exc)
    state = call.state
    result, policy = await state.search_gate.run(_search, state, f)
    mask = masking_store.masker_of(policy, call.request)
    shown = [mask(row) for row in result.events]
    data = EventsJson(
        events=[event_json(row) for row in shown],
        limit=result.limit,
        next_cursor=result.next_cursor,
        scan_capped_at=result.scan_capped_at,
    )
    page = {
        "filter": f,
        "error": error,
        "result": result,
        "rows": [_row_view(row) for row in shown],
        "query": call.query,
        "next_url": _next_url(f, result.next_cursor),
        "tail_url": "/events/tail?" + urlencode(f.query_args()),
        "newest_id": max((row["id"] for row in result.events), default=0),
        "tail_keep": TAIL_KEEP_ROWS,
    }
    return Reply(data, page=page)


def _search(state: AppState, f: EventFilter) -> tuple[SearchResult, MaskingPolicy]:
    """The search and the masking policy, on one thread (the search gate's)."""
    timeout_s = state.settings.server.search_timeout_s
    result = event_store.search_events(state.engine, f, timeout_s=timeout_s)
    return result, masking_store.policy_in_force(state)


def _next_url(f: EventFilter, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return "/events?" + urlencode({**f.query_args(), "cursor": cursor})


def _row_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "path": event_path(row),
        "key_display": display_key(row["key"], row["decoded_key"]),
        "time": event_store.format_time(row["timestamp_ms"]),
    }


async def event_detail(call: Call) -> Reply:
    cluster, topic, partition, offset = record_coordinates(call.request)
    row, policy = await run_in_threadpool(
        _event_and_policy, call.state, cluster, topic, partition, offset
    )
    if row is None:
        raise HTTPException(404, f"no indexed event at {cluster}/{topic}/{partition}@{offset}")
    row = masking_store.masker_of(policy, call.request)(row)
    key = search_key(row["key"], row["decoded_key"])
    key_history = (
        urls.events(cluster=row["cluster"], topic=row["topic"], key=key.decode())
        if key is not None and _is_utf8(key)
        else None
    )
    schemas = await run_in_threadpool(schema_refs, call.state, row)
    page = {
        "event": _row_view(row),
        "headers": header_rows(row["headers"]),
        "payload": payload_view(row["value"]),
        "decoded": decoded_view(row),
        "schemas": schemas,
        "key_history_url": key_history,
    }
    return Reply({**event_json(row, full=True), "schemas": schemas}, page=page)


def _event_and_policy(
    state: AppState, cluster: str, topic: str, partition: int, offset: int
) -> tuple[dict[str, Any] | None, MaskingPolicy]:
    """The record and the masking policy, in one trip through the thread pool."""
    row = event_store.get_event(state.engine, cluster, topic, partition, offset)
    return row, masking_store.policy_in_force(state)


MAX_SUBJECTS_SHOWN = 5


def schema_refs(state: AppState, row: Mapping[str, Any]) -> list[SchemaRefJson]:
    """The registry schemas of a record (value, key) with their subjects and versions.

    A registry gives one id to equal schemas whatever the subject, so an id may belong to
    many subjects: the topic's own (`<topic>-value`, TopicNameStrategy) comes first."""
    refs = []
    for part, schema_id in (("value", row["schema_id"]), ("key", row["key_schema_id"])):
        if schema_id is None:
            continue
        own = f"{row['topic']}-{part}"
        pairs = sorted(
            schema_store.subjects_of(state, row["cluster"], schema_id),
            key=lambda pair: (pair[0] != own, pair[0], pair[1]),
        )
        subjects = [
            {"subject": subject, "version": version,
             "link": urls.schema(row["cluster"], subject, version=version)}
            for subject, version in pairs[:MAX_SUBJECTS_SHOWN]
        ]  # fmt: skip
        refs.append(SchemaRefJson(part=part, schema_id=schema_id, subjects=subjects))
    return refs


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def events_tail(call: Call) -> Response:
    """Server-sent events: each message is the HTML of new rows matching the filter."""
    state, request = call.state, call.request
    f = _filter_or_400(call)
    try:
        after = int(call.query.get("after", "0"))
    except ValueError:
        raise HTTPException(400, "after: not an integer") from None
    if after <= 0:
        after = await run_in_threadpool(event_store.max_event_id, state.engine)
    template = state.templates.get_template("_event_rows.html")
    mask = await masker_for(request)

    async def stream() -> AsyncIterator[str]:
        nonlocal after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TAIL_MAX_S
        yield ": live tail\n\n"
        while loop.time() < deadline:
            if await request.is_disconnected():
                return
            rows = await run_in_threadpool(event_store.newer_than, state.engine, f, after)
            if rows:
                after = max(row["id"] for row in rows)
                shown = [_row_view(mask(row)) for row in reversed(rows)]
                html = template.render(rows=shown, fresh=True)
                data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
                yield f"event: rows\nid: {after}\n{data}\n\n"
            await asyncio.sleep(TAIL_POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


RECORD = (
    p("cluster", STRING, "a configured cluster's name"),
    p("topic", STRING, "a topic name"),
    p("partition", integer(0), "partition number"),
    p("offset", integer(0), "record offset"),
)
FILTER_TEXT = text(MAX_FILTER_CHARS)
EVENT_FILTER = (
    q("cluster", FILTER_TEXT, "exact cluster name"),
    q("topic", FILTER_TEXT, "one topic or several, comma-separated"),
    q("partition", integer(0)),
    q("time_from", FILTER_TEXT, "ISO 8601 (UTC unless an offset is given) or epoch ms"),
    q("time_to", FILTER_TEXT, "ISO 8601 (UTC unless an offset is given) or epoch ms"),
    q("offset_from", integer(0)),
    q("offset_to", integer(0)),
    q("key", STRING, "exact record key (UTF-8)"),
    q("event_type", FILTER_TEXT),
    q("source", FILTER_TEXT),
    q("header_name", FILTER_TEXT, "records having this header (case-insensitive)"),
    q("header_value", FILTER_TEXT, "with header_name: the value contains this text"),
    q("correlation_id", FILTER_TEXT),
    q("event_id", FILTER_TEXT),
    q("trace_id", FILTER_TEXT, "32 hex digits"),
    q(
        "text",
        FILTER_TEXT,
        "the value's bytes, or its decoded form (a record with a schema), "
        "contain this text (scans the newest rows)",
    ),
    q(
        "json_path",
        FILTER_TEXT,
        "a field of the JSON or decoded payload, e.g. "
        "$.metadata.correlationId (scans the newest rows)",
    ),
    q(
        "json_value",
        FILTER_TEXT,
        "with json_path: the field equals this (text, number, "
        "true, false or null); without it, the field exists",
    ),
    q("dlq_only", enum("1", "true", "on", "0"), "dead-letter records only"),
    q("limit", integer(1, MAX_LIMIT), "page size (default 50)"),
    q("cursor", FILTER_TEXT, "next_cursor of the previous page"),
)

ENDPOINTS = [
    Endpoint(
        events_page, VIEWER, path="/events", api="/api/events", template="events.html",
        partial="_events_table.html",
        summary="Search the indexed events across topics, newest first, with cursor paging.",
        params=EVENT_FILTER, response=EventsJson, errors=(400, 429, 503),
    ),
    Endpoint(events_tail, VIEWER, path="/events/tail"),
    Endpoint(
        event_detail, VIEWER, path="/events/{cluster}/{topic}/{partition}/{offset}",
        api="/api/events/{cluster}/{topic}/{partition}/{offset}", template="event.html",
        summary="One indexed record with its headers and value.",
        params=RECORD, response=EventJson, errors=(400, 404),
    ),
]  # fmt: skip
