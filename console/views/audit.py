"""The audit log: who did what, when and from where (admin only). Page /audit, JSON /api/audit.

Read-only on purpose: no route updates or deletes an audit row.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.state import app_state
from console.stores import audit as audit_store
from console.stores.audit import ACTION_KINDS, AuditFilter
from console.stores.events import SearchError


async def audit_page(request: Request) -> Response:
    state = app_state(request)
    api = request.url.path.startswith("/api/")
    try:
        f = audit_store.parse_filter(request.query_params)
        error = None
    except SearchError as exc:
        if api:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        f, error = AuditFilter(), str(exc)
    page = await run_in_threadpool(audit_store.search_audit, state.engine, f)
    if api:
        return JSONResponse(
            {"entries": page.entries, "limit": page.limit, "next_cursor": page.next_cursor}
        )
    actors = await run_in_threadpool(audit_store.known_actors, state.engine)
    next_url = (
        "/audit?" + urlencode({**f.query_args(), "cursor": page.next_cursor})
        if page.next_cursor
        else None
    )
    context = {
        "filter": f, "query": request.query_params, "error": error, "page": page,
        "kinds": ACTION_KINDS, "actors": actors, "next_url": next_url,
        "api_url": "/api/audit?" + urlencode(f.query_args()),
    }  # fmt: skip
    return state.templates.TemplateResponse(request, "audit.html", context)


routes = [
    Route("/audit", audit_page),
    Route("/api/audit", audit_page),
]
