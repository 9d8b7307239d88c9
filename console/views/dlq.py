"""Dead-letter queues: every DLQ topic with counts and ages, one DLQ's messages grouped by
error and by original topic, and one message with its stack trace and redrive status.

DLQ records are the events the collector marked `is_dlq` (by topic name pattern or by
Spring Kafka, Kafka Connect or generic dead-letter headers). JSON twins under /api/dlq.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors.index.models import EVENTS_IS_DLQ, events_table
from console.payload_view import display_key
from console.state import app_state
from console.stores import events as event_store
from console.stores import jobs
from console.stores.masking import masker_for
from console.views.events import event_json, event_path
from console.views.requests import record_coordinates

PAGE_SIZE = 100
GROUPS_SHOWN = 50


def dlq_topics(engine: Engine) -> list[dict[str, Any]]:
    c = events_table.c
    query = (
        select(c.cluster, c.topic, func.count().label("count"),
               func.min(c.timestamp_ms).label("oldest_ms"),
               func.max(c.timestamp_ms).label("newest_ms"))
        .where(EVENTS_IS_DLQ)
        .group_by(c.cluster, c.topic)
        .order_by(c.cluster, c.topic)
    )  # fmt: skip
    now = time.time() * 1000
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    for row in rows:
        row["oldest_age_s"] = (now - row["oldest_ms"]) / 1000
        row["newest_age_s"] = (now - row["newest_ms"]) / 1000
    return rows


def dlq_overview(
    engine: Engine, cluster: str, topic: str, error_class: str | None, original: str | None
) -> dict[str, Any]:
    c = events_table.c
    base = [EVENTS_IS_DLQ, c.cluster == cluster, c.topic == topic]
    chosen = list(base)
    if error_class:
        chosen.append(c.dlq_error_class == error_class)
    if original:
        chosen.append(c.dlq_original_topic == original)
    message = func.substr(c.dlq_error_message, 1, 200)
    with engine.connect() as connection:
        by_error = [
            dict(r._mapping)
            for r in connection.execute(
                select(
                    c.dlq_error_class.label("error_class"),
                    message.label("error_message"),
                    func.count().label("count"),
                    func.max(c.timestamp_ms).label("newest_ms"),
                )
                .where(*base)
                .group_by(c.dlq_error_class, message)
                .order_by(func.count().desc())
                .limit(GROUPS_SHOWN)
            )
        ]
        by_original = [
            dict(r._mapping)
            for r in connection.execute(
                select(c.dlq_original_topic.label("original_topic"), func.count().label("count"))
                .where(*base)
                .group_by(c.dlq_original_topic)
                .order_by(func.count().desc())
                .limit(GROUPS_SHOWN)
            )
        ]
        columns = list(event_store.LIST_COLUMNS)
        messages = [
            dict(r._mapping)
            for r in connection.execute(
                select(*columns)
                .where(*chosen)
                .order_by(c.timestamp_ms.desc(), c.id.desc())
                .limit(PAGE_SIZE)
            )
        ]
        total = connection.execute(select(func.count()).where(*chosen)).scalar() or 0
    states = jobs.redrive_states(
        engine, cluster, [(m["topic"], m["partition"], m["offset"]) for m in messages]
    )
    now = time.time() * 1000
    for m in messages:
        m["redrive"] = states.get((m["topic"], m["partition"], m["offset"]))
        m["age_s"] = (now - m["timestamp_ms"]) / 1000
    return {"by_error": by_error, "by_original": by_original, "messages": messages,
            "total": total}  # fmt: skip


def message_json(row: dict[str, Any]) -> dict[str, Any]:
    body = event_json(row)
    body["age_s"] = row.get("age_s")
    body["redrive"] = row.get("redrive")
    return body


async def dlq_page(request: Request) -> Response:
    state = app_state(request)
    topics = await run_in_threadpool(dlq_topics, state.engine)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"dlqs": topics})
    return state.templates.TemplateResponse(request, "dlq.html", {"topics": topics})


async def dlq_topic_page(request: Request) -> Response:
    state = app_state(request)
    cluster, topic = request.path_params["cluster"], request.path_params["topic"]
    error_class = request.query_params.get("error_class") or None
    original = request.query_params.get("original_topic") or None
    for name, value in (("error_class", error_class), ("original_topic", original)):
        if value is not None and len(value) > 1000:
            raise HTTPException(400, f"{name}: longer than 1000 characters")
    overview = await run_in_threadpool(
        dlq_overview, state.engine, cluster, topic, error_class, original
    )
    mask = await masker_for(request)
    overview["messages"] = [mask(m) for m in overview["messages"]]
    overview["by_error"] = [  # error groups are masked as rows of this topic
        {k: v for k, v in mask({**g, "topic": topic}).items() if k in g}
        for g in overview["by_error"]
    ]
    if request.url.path.startswith("/api/"):
        return JSONResponse({
            "cluster": cluster, "topic": topic, "total": overview["total"],
            "by_error": overview["by_error"], "by_original_topic": overview["by_original"],
            "messages": [message_json(m) for m in overview["messages"]],
        })  # fmt: skip
    for m in overview["messages"]:
        m["path"] = "/dlq" + event_path(m)[7:]
        m["key_display"] = display_key(m["key"])
        m["item"] = f"{m['topic']}/{m['partition']}/{m['offset']}"
    redrive_all_url = "/actions/new?" + urlencode(
        {"kind": "redrive", "cluster": cluster, "topic": topic, "dlq_only": "1"}
    )
    context = {
        "cluster": cluster, "topic": topic, "overview": overview,
        "error_class": error_class, "original_topic": original,
        "redrive_all_url": redrive_all_url,
    }  # fmt: skip
    return state.templates.TemplateResponse(request, "dlq_topic.html", context)


async def dlq_message_page(request: Request) -> Response:
    state = app_state(request)
    cluster, topic, partition, offset = record_coordinates(request)
    row = await run_in_threadpool(
        event_store.get_event, state.engine, cluster, topic, partition, offset
    )
    if row is None or not row["is_dlq"]:
        raise HTTPException(404, f"no indexed DLQ record at {cluster}/{topic}/{partition}@{offset}")

    def lookups() -> tuple[Any, Any, Any]:
        coords = (topic, partition, offset)
        status = jobs.redrive_states(state.engine, cluster, [coords]).get(coords)
        history = jobs.redrive_history(state.engine, cluster, row)
        original = None
        if row["dlq_original_topic"] and row["dlq_original_offset"] is not None:
            original = event_store.get_event(
                state.engine, cluster, row["dlq_original_topic"],
                row["dlq_original_partition"] or 0, row["dlq_original_offset"],
            )  # fmt: skip
        return status, history, original

    status, history, original = await run_in_threadpool(lookups)
    shown = (await masker_for(request))(row)
    original_path = event_path(original) if original else None
    if request.url.path.startswith("/api/"):
        body = event_json(shown, full=True)
        body.update(redrive=status, history=history, original_link=original_path)
        return JSONResponse(body)
    context = {
        "event": {**shown, "path": event_path(shown), "key_display": display_key(shown["key"]),
                  "time": event_store.format_time(shown["timestamp_ms"])},
        "status": status, "history": history, "original_path": original_path,
        "redrive_url": "/actions/new?" + urlencode(
            {"kind": "redrive", "cluster": cluster, "item": f"{topic}/{partition}/{offset}"}
        ),
    }  # fmt: skip
    return state.templates.TemplateResponse(request, "dlq_message.html", context)


routes = [
    Route("/dlq", dlq_page),
    Route("/api/dlq", dlq_page),
    Route("/dlq/{cluster}/{topic}", dlq_topic_page),
    Route("/api/dlq/{cluster}/{topic}", dlq_topic_page),
    Route("/dlq/{cluster}/{topic}/{partition}/{offset}", dlq_message_page),
    Route("/api/dlq/{cluster}/{topic}/{partition}/{offset}", dlq_message_page),
]
