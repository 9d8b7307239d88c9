"""Events: search across all topics, event detail, and the live tail.

Pages: /events, /events/{cluster}/{topic}/{partition}/{offset}; /events/tail streams new
rows as server-sent events. JSON twins: /api/events and /api/events/{cluster}/...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from console.payload_view import (
    bytes_for_json,
    display_key,
    header_rows,
    headers_for_json,
    payload_view,
)
from console.state import app_state
from console.stores import events as event_store
from console.stores.events import EventFilter, SearchError
from console.stores.masking import masker_for
from console.views.requests import record_coordinates

TAIL_POLL_S = 1.0
TAIL_MAX_S = 30 * 60  # a browser reconnects by itself after this


def event_json(row: dict[str, Any], *, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cluster": row["cluster"],
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "timestamp": event_store.format_time(row["timestamp_ms"]),
        "timestamp_ms": row["timestamp_ms"],
        "key": bytes_for_json(row["key"]),
        "value_size": row["value_size"],
        "value_truncated": row["value_truncated"],
        "tombstone": row["is_tombstone"],
        "content_type": row["content_type"],
        "schema_id": row["schema_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "source": row["source"],
        "correlation_id": row["correlation_id"],
        "causation_id": row["causation_id"],
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "saga_id": row["saga_id"],
        "dlq": None,
        "links": {"self": "/api" + event_path(row)},
    }
    if row["is_dlq"]:
        body["dlq"] = {
            "original_topic": row["dlq_original_topic"],
            "original_partition": row["dlq_original_partition"],
            "original_offset": row["dlq_original_offset"],
            "error_class": row["dlq_error_class"],
            "error_message": row["dlq_error_message"],
            "attempts": row["dlq_attempts"],
            "format": row["dlq_format"],
        }
    if full:
        body["headers"] = headers_for_json(row["headers"])
        body["value"] = bytes_for_json(row["value"])
        if row["is_dlq"]:
            body["dlq"]["stacktrace"] = row["dlq_stacktrace"]
    return body


def event_path(row: dict[str, Any]) -> str:
    return (
        f"/events/{quote(row['cluster'], safe='')}/{quote(row['topic'], safe='')}"
        f"/{row['partition']}/{row['offset']}"
    )


def _filter_or_400(request: Request) -> EventFilter:
    try:
        return event_store.parse_filter(request.query_params)
    except SearchError as exc:
        raise HTTPException(400, str(exc)) from None


async def events_page(request: Request) -> Response:
    state = app_state(request)
    api = request.url.path.startswith("/api/")
    try:
        f = event_store.parse_filter(request.query_params)
        error = None
    except SearchError as exc:
        if api:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        f, error = EventFilter(), str(exc)
    result = await run_in_threadpool(event_store.search_events, state.engine, f)
    mask = await masker_for(request)
    shown = [mask(row) for row in result.events]
    if api:
        return JSONResponse(
            {
                "events": [event_json(row) for row in shown],
                "limit": result.limit,
                "next_cursor": result.next_cursor,
                "scan_capped_at": result.scan_capped_at,
            }
        )
    context = {
        "filter": f,
        "error": error,
        "result": result,
        "rows": [_row_view(row) for row in shown],
        "query": request.query_params,
        "next_url": _next_url(f, result.next_cursor),
        "tail_url": "/events/tail?" + urlencode(f.query_args()),
        "newest_id": max((row["id"] for row in result.events), default=0),
    }
    template = "_events_table.html" if request.headers.get("hx-request") else "events.html"
    return state.templates.TemplateResponse(request, template, context)


def _next_url(f: EventFilter, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return "/events?" + urlencode({**f.query_args(), "cursor": cursor})


def _row_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "path": event_path(row),
        "key_display": display_key(row["key"]),
        "time": event_store.format_time(row["timestamp_ms"]),
    }


async def event_detail(request: Request) -> Response:
    state = app_state(request)
    cluster, topic, partition, offset = record_coordinates(request)
    row = await run_in_threadpool(
        event_store.get_event, state.engine, cluster, topic, partition, offset
    )
    if row is None:
        raise HTTPException(404, f"no indexed event at {cluster}/{topic}/{partition}@{offset}")
    row = (await masker_for(request))(row)
    if request.url.path.startswith("/api/"):
        return JSONResponse(event_json(row, full=True))
    key_query = (
        urlencode({"cluster": row["cluster"], "topic": row["topic"], "key": row["key"].decode()})
        if row["key"] is not None and _is_utf8(row["key"])
        else None
    )
    context = {
        "event": _row_view(row),
        "headers": header_rows(row["headers"]),
        "payload": payload_view(row["value"]),
        "key_history_url": f"/events?{key_query}" if key_query else None,
    }
    return state.templates.TemplateResponse(request, "event.html", context)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def events_tail(request: Request) -> Response:
    """Server-sent events: each message is the HTML of new rows matching the filter."""
    state = app_state(request)
    f = _filter_or_400(request)
    try:
        after = int(request.query_params.get("after", "0"))
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
                html = template.render(rows=[_row_view(mask(r)) for r in reversed(rows)])
                data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
                yield f"event: rows\nid: {after}\n{data}\n\n"
            await asyncio.sleep(TAIL_POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes = [
    Route("/events", events_page),
    Route("/api/events", events_page),
    Route("/events/tail", events_tail),
    Route("/events/{cluster}/{topic}/{partition}/{offset}", event_detail),
    Route("/api/events/{cluster}/{topic}/{partition}/{offset}", event_detail),
]
