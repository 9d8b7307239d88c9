"""Administration of masking rules: /admin/masking and its JSON twin /api/admin/masking.

Rules from the configuration file are listed read-only; rules made here are stored in the
index, can be switched off and deleted, and every change is written to the audit log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from console.masking import KINDS, MaskingRuleError
from console.masking_rules import masking_settings, rule_from_mapping
from console.state import app_state
from console.stores import audit as audit_store
from console.stores import masking as masking_store
from console.views.auth import principal_of, remote_of
from console.views.requests import is_api, json_object


def _actor(request: Request) -> str:
    principal = principal_of(request)
    return principal.name if principal else "anonymous"


def _stored_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "kind": row["kind"], "pattern": row["pattern"],
        "topics": row["topics"], "replacement": row["replacement"], "enabled": row["enabled"],
        "source": "console", "created_by": row["created_by"],
        "created_at_ms": row["created_at_ms"], "updated_at_ms": row["updated_at_ms"],
    }  # fmt: skip


def _overview(request: Request) -> dict[str, Any]:
    state = app_state(request)
    configured = masking_settings(state.settings.masking)
    return {
        "apply_to": configured.apply_to,
        "rules": [
            {**rule.as_json(), "id": None, "enabled": True, "source": "config"}
            for rule in configured.rules
        ]
        + [_stored_json(row) for row in masking_store.list_rules(state.engine)],
    }


def _back(error: str | None = None) -> RedirectResponse:
    return RedirectResponse(
        "/admin/masking" + (f"?{urlencode({'error': error})}" if error else ""), 303
    )


async def masking_page(request: Request) -> Response:
    state = app_state(request)
    overview = await run_in_threadpool(_overview, request)
    if is_api(request):
        return JSONResponse(overview)
    context = {**overview, "kinds": KINDS, "error": request.query_params.get("error")}
    return state.templates.TemplateResponse(request, "admin_masking.html", context)


def _enabled_of(body: dict[str, Any]) -> bool:
    enabled = body.get("enabled", True)
    if isinstance(enabled, str):
        return enabled.lower() in ("1", "true", "on", "yes")
    if not isinstance(enabled, bool):
        raise MaskingRuleError("enabled", "must be true or false")
    return enabled


async def create_rule(request: Request) -> Response:
    state = app_state(request)
    if is_api(request):
        body = await json_object(request)
    else:
        form = await request.form()
        body = {k: str(v) for k, v in form.items() if k != "csrf_token" and str(v) != ""}
    try:
        enabled = _enabled_of(body)
        rule = rule_from_mapping({k: v for k, v in body.items() if k != "enabled"})
    except MaskingRuleError as exc:
        if is_api(request):
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        return _back(str(exc))

    def write() -> int:
        with state.engine.begin() as connection:
            rule_id = masking_store.create_rule(connection, rule, enabled, _actor(request))
            audit_store.record(
                connection, _actor(request), "masking.rule.create", rule.name,
                {**rule.as_json(), "id": rule_id, "enabled": enabled}, remote_of(request),
            )  # fmt: skip
            return rule_id

    try:
        rule_id = await run_in_threadpool(write)
    except ValueError as exc:
        if is_api(request):
            return JSONResponse({"error": str(exc), "field": "name"}, status_code=409)
        return _back(str(exc))
    if is_api(request):
        return JSONResponse({"id": rule_id, **rule.as_json(), "enabled": enabled}, status_code=201)
    return _back()


async def change_rule(request: Request) -> Response:
    """PATCH {"enabled": bool} (API) or the form's enable/disable button."""
    state = app_state(request)
    rule_id = int(request.path_params["rule_id"])
    if request.method == "PATCH":
        body = await json_object(request)
        if set(body) != {"enabled"}:
            raise HTTPException(400, 'give {"enabled": true|false}')
    else:
        form = await request.form()
        body = {"enabled": str(form.get("enabled", ""))}
    try:
        enabled = _enabled_of(body)
    except MaskingRuleError as exc:
        raise HTTPException(400, str(exc)) from None

    def write() -> dict[str, Any] | None:
        with state.engine.begin() as connection:
            row = masking_store.get_rule(connection, rule_id)
            if row is None:
                return None
            masking_store.set_enabled(connection, rule_id, enabled)
            action = "masking.rule.enable" if enabled else "masking.rule.disable"
            audit_store.record(connection, _actor(request), action, row["name"], {"id": rule_id},
                         remote_of(request))  # fmt: skip
            return row

    if await run_in_threadpool(write) is None:
        raise HTTPException(404, f"no masking rule {rule_id}")
    if is_api(request):
        return JSONResponse({"id": rule_id, "enabled": enabled})
    return _back()


async def delete_rule(request: Request) -> Response:
    state = app_state(request)
    rule_id = int(request.path_params["rule_id"])

    def write() -> dict[str, Any] | None:
        with state.engine.begin() as connection:
            row = masking_store.get_rule(connection, rule_id)
            if row is None:
                return None
            masking_store.delete_rule(connection, rule_id)
            audit_store.record(
                connection, _actor(request), "masking.rule.delete", row["name"],
                {"id": rule_id, "kind": row["kind"], "pattern": row["pattern"]},
                remote_of(request),
            )  # fmt: skip
            return row

    if await run_in_threadpool(write) is None:
        raise HTTPException(404, f"no masking rule {rule_id}")
    if is_api(request):
        return JSONResponse({"deleted": rule_id})
    return _back()


routes = [
    Route("/admin/masking", masking_page),
    Route("/api/admin/masking", masking_page),
    Route("/admin/masking", create_rule, methods=["POST"]),
    Route("/api/admin/masking", create_rule, methods=["POST"]),
    Route("/admin/masking/{rule_id:int}/enable", change_rule, methods=["POST"]),
    Route("/api/admin/masking/{rule_id:int}", change_rule, methods=["PATCH"]),
    Route("/admin/masking/{rule_id:int}/delete", delete_rule, methods=["POST"]),
    Route("/api/admin/masking/{rule_id:int}", delete_rule, methods=["DELETE"]),
]
