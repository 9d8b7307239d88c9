"""The OpenAPI 3.1 description of the JSON API, served at GET /api/openapi.json.

One declarative table, `OPERATIONS`, describes every /api route: keyed by the route's
path template exactly as the route list writes it, then by method. The document is built
from it (path parameters and their types come from the template; the required role comes
from console/auth/permissions.py), and a test fails when an /api route has no entry or an
entry has no route, so the description cannot drift from the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.auth.permissions import LEGACY, required_role
from console.stores.audit import MAX_LIMIT as AUDIT_MAX_LIMIT
from console.stores.events import MAX_FILTER_CHARS, MAX_LIMIT
from console.web import openapi
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import (
    ARRAY,
    BOOLEAN,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    Param,
    Schema,
    array_of,
    enum,
    integer,
    p,
    q,
    shape,
    text,
)

NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_INTEGER: Schema = {"type": ["integer", "null"]}
NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
NULLABLE_OBJECT: Schema = {"type": ["object", "null"]}


@dataclass(frozen=True)
class Operation:
    summary: str
    params: tuple[Param, ...] = ()
    body: Schema | None = None
    ok_status: int = 200
    ok: Schema = field(default_factory=lambda: dict(OBJECT))
    other_ok: tuple[tuple[int, str, Schema], ...] = ()  # (status, description, schema)
    errors: tuple[int, ...] = ()  # beyond 401 and 403, which every operation has
    description: str = ""


# --- shared pieces of the API ----------------------------------------------------------------

COMPONENT_SCHEMAS: dict[str, Schema] = {
    "EventSummary": shape(
        required=False,
        cluster=STRING,
        topic=STRING,
        partition=INTEGER,
        offset=INTEGER,
        timestamp=STRING,
        timestamp_ms=INTEGER,
        key=NULLABLE_OBJECT,
        value_size=INTEGER,
        value_truncated=BOOLEAN,
        tombstone=BOOLEAN,
        content_type=NULLABLE_STRING,
        event_id=NULLABLE_STRING,
        event_type=NULLABLE_STRING,
        source=NULLABLE_STRING,
        correlation_id=NULLABLE_STRING,
        causation_id=NULLABLE_STRING,
        trace_id=NULLABLE_STRING,
        span_id=NULLABLE_STRING,
        saga_id=NULLABLE_STRING,
        dlq=NULLABLE_OBJECT,
        links=OBJECT,
    ),
    "GroupSummary": shape(
        required=False,
        cluster=STRING,
        group=STRING,
        state=STRING,
        status=STRING,
        complete=NUMBER,
        totallag=INTEGER,
        maxlag=INTEGER,
        max_time_lag_s=NULLABLE_NUMBER,
        members=INTEGER,
        partition_count=INTEGER,
        topics=array_of(STRING),
        sampled_at_ms=INTEGER,
        links=OBJECT,
    ),
    "Job": shape(
        required=False,
        id=INTEGER,
        kind=enum("replay", "redrive"),
        cluster=STRING,
        status=STRING,
    ),
}

CLUSTER = p("cluster", STRING, "a configured cluster's name")
TOPIC = p("topic", STRING, "a topic name")
PARTITION = p("partition", integer(0), "partition number")
OFFSET = p("offset", integer(0), "record offset")
SHORT_TEXT = text(300)
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
    q("text", FILTER_TEXT, "bytes of the value contain this text (scans the newest rows)"),
    q("dlq_only", enum("1", "true", "on", "0"), "dead-letter records only"),
    q("limit", integer(1, MAX_LIMIT), "page size (default 50)"),
    q("cursor", FILTER_TEXT, "next_cursor of the previous page"),
)
RULE: Schema = {
    "type": "object",
    "description": "an alert rule; which keys apply depends on `kind` (see /api/alerts/rules)",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 100},
        "kind": enum(
            "group_status",
            "offset_lag",
            "time_lag",
            "dlq",
            "saga",
            "topic_silent",
            "collector_delay",
            "cluster_unreachable",
        ),
        "cluster": STRING,
        "group": STRING,
        "topic": STRING,
        "saga_type": STRING,
        "threshold": NUMBER,
        "window": {"type": ["string", "number"], "description": "30s, 5m, 2h, 1d or seconds"},
        "statuses": array_of(STRING),
        "for": {"type": ["string", "number"], "description": "30s, 5m, 2h, 1d or seconds"},
        "severity": enum("critical", "warning", "info"),
        "labels": {"type": "object", "additionalProperties": STRING},
        "annotations": {"type": "object", "additionalProperties": STRING},
        "receivers": array_of(STRING),
        "enabled": BOOLEAN,
    },
    "required": ["name", "kind"],
}

RECEIVER: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"},
        "url": {"type": "string", "format": "uri", "maxLength": 2000},
        "headers": {"type": "object", "additionalProperties": STRING},
        "timeout": {"type": ["string", "number"], "description": "at most 2m"},
        "max_alerts": integer(0),
        "enabled": BOOLEAN,
        "sign": {"type": "boolean", "description": "generate a signing secret (default true)"},
    },
    "required": ["name", "url"],
}

ROLE = enum("viewer", "operator", "admin")

# --- the table: every /api route -------------------------------------------------------------

OPERATIONS: dict[str, dict[str, Operation]] = {
    "/api/openapi.json": {"GET": Operation("This document (OpenAPI 3.1).")},
    "/api/whoami": {
        "GET": Operation("Who the caller is.", ok=shape(name=STRING, role=ROLE, via=STRING)),
    },
    # events
    # consumer lag
    # tracing, lineage, topology
    # sagas
    # dead-letter queues and jobs
    # alerts
    # administration
    "/api/admin/users": {
        "GET": Operation("Local users.", ok=shape(users=ARRAY)),
        "POST": Operation(
            "Create a local user.",
            body={
                "type": "object",
                "properties": {"username": text(100), "password": STRING, "role": ROLE},
                "required": ["username", "password"],
            },
            ok_status=201,
            ok=shape(created=STRING),
            errors=(400,),
        ),
    },
    "/api/admin/users/{username}": {
        "PATCH": Operation(
            "Change a user's role or password, or disable them.",
            body={
                "type": "object",
                "properties": {"role": ROLE, "password": STRING, "disabled": BOOLEAN},
            },
            ok=shape(updated=STRING),
            errors=(400,),
        ),
    },
    "/api/admin/tokens": {
        "GET": Operation("API tokens (never the secrets).", ok=shape(tokens=ARRAY)),
        "POST": Operation(
            "Create an API token; the token is in this answer only.",
            body={
                "type": "object",
                "properties": {"name": text(100), "role": ROLE},
            },
            ok_status=201,
            ok=shape(id=INTEGER, token=STRING, shown_once=BOOLEAN),
            errors=(400,),
        ),
    },
    "/api/admin/masking": {
        "GET": Operation("Masking rules (configured and console) for payloads and headers."),
        "POST": Operation(
            "Create a console masking rule.",
            body={
                "type": "object",
                "description": "one of header, json_path or regex; or kind with pattern",
                "properties": {
                    "name": STRING,
                    "header": STRING,
                    "json_path": STRING,
                    "regex": STRING,
                    "kind": STRING,
                    "pattern": STRING,
                    "topics": STRING,
                    "replacement": STRING,
                    "enabled": BOOLEAN,
                },
            },
            ok_status=201,
            errors=(400, 409),
        ),
    },
    "/api/admin/masking/{rule_id:int}": {
        "PATCH": Operation(
            "Enable or disable a console masking rule.",
            body=shape(enabled=BOOLEAN),
            ok=shape(id=INTEGER, enabled=BOOLEAN),
            errors=(400, 404),
        ),
        "DELETE": Operation(
            "Delete a console masking rule.",
            ok=shape(deleted=INTEGER),
            errors=(404,),
        ),
    },
    "/api/audit": {
        "GET": Operation(
            "The audit log, newest first, with cursor paging.",
            params=(
                q("actor", STRING),
                q("action", STRING, "a kind (user) or a full action (user.role)"),
                q("q", STRING, "text in the target or detail"),
                q("since", STRING, "ISO 8601 or epoch ms"),
                q("until", STRING, "ISO 8601 or epoch ms"),
                q("limit", integer(1, AUDIT_MAX_LIMIT)),
                q("cursor", STRING),
            ),
            errors=(400,),
        ),
    },
    "/api/admin/tokens/{token_id:int}": {
        "DELETE": Operation(
            "Revoke an API token.",
            ok=shape(revoked=INTEGER),
            errors=(404,),
        ),
    },
}

# --- the legacy table as endpoint declarations (until every area declares its own) ----------


async def _undeclared(call: Call) -> Reply:
    raise NotImplementedError  # never routed: the legacy routes answer themselves


def legacy_endpoints() -> list[Endpoint]:
    found = []
    for template, methods in OPERATIONS.items():
        for method, op in methods.items():
            role = required_role(LEGACY[template], method) or "admin"
            found.append(
                Endpoint(
                    _undeclared, role, api=template, method=method, summary=op.summary,
                    description=op.description, params=op.params, body=op.body,
                    response=op.ok, status=op.ok_status, other_responses=op.other_ok,
                    errors=op.errors,
                )
            )  # fmt: skip
    return found


def build_document(server_url: str | None = None) -> Schema:
    from console.views import registry

    return openapi.build_document([*registry.all_endpoints(), *legacy_endpoints()], server_url)


async def openapi_document(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return JSONResponse(build_document(base))


routes = [Route("/api/openapi.json", openapi_document)]
