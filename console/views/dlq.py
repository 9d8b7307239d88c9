"""Dead-letter queues: every DLQ topic with counts and ages, one DLQ's messages grouped by
error and by original topic, and one message with its stack trace and redrive status.

Pages under /dlq, JSON twins under /api/dlq; the queries are in console/stores/dlq.py.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console.auth.roles import VIEWER
from console.payload_view import decoded_view, display_key, payload_view
from console.stores import dlq as store
from console.stores import events as event_store
from console.stores import sagas as saga_store
from console.stores.jobs import RedriveRound, RedriveState
from console.stores.masking import masker_for
from console.views.events import RECORD, EventJson, event_json, event_path, schema_refs
from console.views.requests import record_coordinates
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import q, text

MAX_FILTER_CHARS = 1000


class DlqTopicsJson(TypedDict):
    dlqs: list[store.DlqTopic]


class DlqMessageJson(EventJson):
    age_s: float | None
    redrive: RedriveState | None


class DlqTopicJson(TypedDict):
    cluster: str
    topic: str
    total: int
    by_error: list[store.ErrorGroup]
    by_original_topic: list[store.OriginalGroup]
    messages: list[DlqMessageJson]


class SagaRefJson(TypedDict):
    """The saga a record belongs to, and whether it is over (redriving then re-runs a step
    after its end)."""

    saga_id: str
    status: str
    last_event_at: str
    over: bool
    link: str


class ConnectSourceJson(TypedDict):
    """The Kafka Connect connector and task that dead-lettered the record (its
    `__connect.errors.*` headers), and the Connect page that shows it."""

    connector: str
    task: int | None
    link: str


class DlqMessageDetailJson(EventJson):
    redrive: RedriveState | None
    history: list[RedriveRound]
    original_link: str | None
    saga: SagaRefJson | None
    connect: ConnectSourceJson | None


def connect_source(cluster: str, headers: Any) -> ConnectSourceJson | None:
    """From the record's headers (JSON `[[name, value], ...]`, as indexed)."""
    try:
        entries = json.loads(headers) if isinstance(headers, str) else headers
    except ValueError:
        return None
    found = {
        entry[0]: entry[1] for entry in entries or []
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)
    }  # fmt: skip
    name = found.get("__connect.errors.connector.name", "").strip()[:200]
    if not name:
        return None
    task = found.get("__connect.errors.task.id", "").strip()
    return ConnectSourceJson(connector=name, task=int(task) if task.isdigit() else None,
                             link=urls.connectors(cluster=cluster, q=name))  # fmt: skip


def message_json(row: dict[str, Any]) -> DlqMessageJson:
    return DlqMessageJson(**event_json(row), age_s=row.get("age_s"), redrive=row.get("redrive"))


async def dlq_page(call: Call) -> Reply:
    topics = await run_in_threadpool(store.dlq_topics, call.engine)
    return Reply(DlqTopicsJson(dlqs=topics), page={"topics": topics})


async def dlq_topic_page(call: Call) -> Reply:
    cluster, topic = call.path["cluster"], call.path["topic"]
    error_class = call.query.get("error_class") or None
    original = call.query.get("original_topic") or None
    for name, value in (("error_class", error_class), ("original_topic", original)):
        if value is not None and len(value) > MAX_FILTER_CHARS:
            raise HTTPException(400, f"{name}: longer than {MAX_FILTER_CHARS} characters")
    overview = await run_in_threadpool(
        store.dlq_overview, call.engine, cluster, topic, error_class, original
    )
    mask = await masker_for(call.request)
    messages = [mask(m) for m in overview.messages]
    by_error = [  # error groups are masked as rows of this topic
        {k: v for k, v in mask({**g, "topic": topic}).items() if k in g} for g in overview.by_error
    ]
    data = DlqTopicJson(
        cluster=cluster, topic=topic, total=overview.total,
        by_error=by_error,  # type: ignore[typeddict-item]
        by_original_topic=overview.by_original,
        messages=[message_json(m) for m in messages],
    )  # fmt: skip
    for m in messages:
        m["path"] = urls.dlq_message(m["cluster"], m["topic"], m["partition"], m["offset"])
        m["key_display"] = display_key(m["key"], m["decoded_key"])
        m["item"] = f"{m['topic']}/{m['partition']}/{m['offset']}"
    page = {
        "cluster": cluster, "topic": topic,
        "overview": {"by_error": by_error, "by_original": overview.by_original,
                     "messages": messages, "total": overview.total},
        "error_class": error_class, "original_topic": original,
        "redrive_all_url": urls.new_job(kind="redrive", cluster=cluster, topic=topic,
                                        dlq_only="1"),
    }  # fmt: skip
    return Reply(data, page=page)


def _saga_of(call: Call, cluster: str, saga_id: str | None) -> SagaRefJson | None:
    found = saga_store.saga_status(call.engine, cluster, saga_id) if saga_id else None
    if saga_id is None or found is None:
        return None
    status, last_ms = found
    return SagaRefJson(
        saga_id=saga_id, status=status, last_event_at=event_store.format_time(last_ms),
        over=status in saga_store.SAGA_OVER, link=urls.saga(cluster, saga_id),
    )  # fmt: skip


async def dlq_message_page(call: Call) -> Reply:
    cluster, topic, partition, offset = record_coordinates(call.request)
    found = await run_in_threadpool(
        store.dlq_message, call.engine, cluster, topic, partition, offset
    )
    if found is None:
        raise HTTPException(404, f"no indexed DLQ record at {cluster}/{topic}/{partition}@{offset}")
    shown = (await masker_for(call.request))(found.row)
    original_path = event_path(found.original) if found.original else None
    schemas = await run_in_threadpool(schema_refs, call.state, shown)
    saga = await run_in_threadpool(_saga_of, call, cluster, found.row.get("saga_id"))
    data = DlqMessageDetailJson(
        **event_json(shown, full=True), redrive=found.redrive, history=found.history,
        schemas=schemas, original_link=original_path, saga=saga,
        connect=connect_source(cluster, shown.get("headers")),
    )  # fmt: skip
    page = {
        "event": {**shown, "path": event_path(shown),
                  "key_display": display_key(shown["key"], shown["decoded_key"]),
                  "time": event_store.format_time(shown["timestamp_ms"])},
        "payload": payload_view(shown["value"]), "decoded": decoded_view(shown),
        "schemas": schemas,
        "status": found.redrive, "history": found.history, "original_path": original_path,
        "saga": saga, "connect": data["connect"],
        "redrive_url": urls.new_job(kind="redrive", cluster=cluster,
                                    item=f"{topic}/{partition}/{offset}"),
    }  # fmt: skip
    return Reply(data, page=page)


ENDPOINTS = [
    Endpoint(
        dlq_page, VIEWER, path="/dlq", api="/api/dlq", template="dlq.html",
        summary="Every dead-letter topic with its count and the age of its oldest and newest.",
        response=DlqTopicsJson,
    ),
    Endpoint(
        dlq_topic_page, VIEWER, path="/dlq/{cluster}/{topic}", api="/api/dlq/{cluster}/{topic}",
        template="dlq_topic.html",
        summary="One DLQ: messages grouped by error and by original topic, newest first.",
        params=(
            *RECORD[:2],
            q("error_class", text(MAX_FILTER_CHARS), "only this exception class"),
            q("original_topic", text(MAX_FILTER_CHARS), "only letters from this topic"),
        ),
        response=DlqTopicJson, errors=(400,),
    ),
    Endpoint(
        dlq_message_page, VIEWER, path="/dlq/{cluster}/{topic}/{partition}/{offset}",
        api="/api/dlq/{cluster}/{topic}/{partition}/{offset}", template="dlq_message.html",
        summary="One dead letter: headers, value, error, its redrive state and history.",
        params=RECORD, response=DlqMessageDetailJson, errors=(400, 404),
    ),
]  # fmt: skip
