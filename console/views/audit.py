"""The audit log: who did what, when and from where (admin only). Page /audit, JSON /api/audit.

Read-only on purpose: no route updates or deletes an audit row.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from typing_extensions import TypedDict

from console.auth.roles import ADMIN
from console.stores import audit as store
from console.stores.audit import ACTION_KINDS, AuditFilter
from console.stores.events import SearchError
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, integer, q


class AuditJson(TypedDict):
    entries: list[dict[str, Any]]  # at_ms, time, actor, action, target, detail, remote
    limit: int
    next_cursor: str | None


async def audit_page(call: Call) -> Reply | Response:
    try:
        f = store.parse_filter(call.request.query_params)
        error = None
    except SearchError as exc:
        if call.api:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        f, error = AuditFilter(), str(exc)
    found = await run_in_threadpool(store.search_audit, call.engine, f)
    data = AuditJson(entries=found.entries, limit=found.limit, next_cursor=found.next_cursor)
    if call.api:
        return Reply(data)
    actors = await run_in_threadpool(store.known_actors, call.engine)
    next_url = (
        "/audit?" + urlencode({**f.query_args(), "cursor": found.next_cursor})
        if found.next_cursor
        else None
    )
    page = {
        "filter": f, "query": call.query, "error": error, "page": found,
        "kinds": ACTION_KINDS, "actors": actors, "next_url": next_url,
        "api_url": "/api/audit?" + urlencode(f.query_args()),
    }  # fmt: skip
    return Reply(data, page=page)


ENDPOINTS = [
    Endpoint(
        audit_page, ADMIN, path="/audit", api="/api/audit", template="audit.html",
        summary="The audit log, newest first, with cursor paging.",
        params=(
            q("actor", STRING),
            q("action", STRING, "a kind (user) or a full action (user.role)"),
            q("q", STRING, "text in the target or detail"),
            q("since", STRING, "ISO 8601 or epoch ms"),
            q("until", STRING, "ISO 8601 or epoch ms"),
            q("limit", integer(1, store.MAX_LIMIT)),
            q("cursor", STRING),
        ),
        response=AuditJson, errors=(400,),
    ),
]  # fmt: skip
