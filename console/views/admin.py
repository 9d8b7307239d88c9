"""Administration: users and API tokens (admin role only; see console/auth/permissions.py)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from console.auth.roles import ROLES
from console.state import app_state
from console.stores import auth as auth_store
from console.stores.audit import user_change_entries
from console.views.auth import audit, principal_of
from console.views.requests import json_object

MAX_ROW_ID = 2**63 - 1  # ids past this are not in the index (and overflow its integer type)


def _actor(request: Request) -> str:
    principal = principal_of(request)
    return principal.name if principal else "anonymous"


async def admin_page(request: Request, created_token: str | None = None) -> Response:
    state = app_state(request)
    users = await run_in_threadpool(auth_store.list_users, state.engine)
    tokens = await run_in_threadpool(auth_store.list_tokens, state.engine)
    return state.templates.TemplateResponse(
        request, "admin.html",
        {"users": users, "tokens": tokens, "roles": ROLES, "created_token": created_token,
         "error": request.query_params.get("error")},
    )  # fmt: skip


def _back(error: str | None = None) -> RedirectResponse:
    from urllib.parse import urlencode

    return RedirectResponse("/admin" + (f"?{urlencode({'error': error})}" if error else ""), 303)


async def users_api(request: Request) -> Response:
    state = app_state(request)
    if request.method == "GET":
        users = await run_in_threadpool(auth_store.list_users, state.engine)
        return JSONResponse({"users": users})
    body = await json_object(request)
    try:
        await run_in_threadpool(
            auth_store.create_user, state.engine, str(body.get("username", "")),
            str(body.get("password", "")), str(body.get("role", "viewer")),
        )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    audit(request, "user.create", str(body.get("username")), {"role": body.get("role")})
    return JSONResponse({"created": body.get("username")}, status_code=201)


async def create_user_form(request: Request) -> Response:
    state = app_state(request)
    form = await request.form()
    username, role = str(form.get("username", "")), str(form.get("role", "viewer"))
    try:
        await run_in_threadpool(
            auth_store.create_user, state.engine, username, str(form.get("password", "")), role
        )
    except ValueError as exc:
        return _back(str(exc))
    audit(request, "user.create", username, {"role": role})
    return _back()


async def update_user(request: Request) -> Response:
    state = app_state(request)
    username = request.path_params["username"]
    if request.method == "PATCH":
        body = await json_object(request)
    else:
        form = await request.form()
        body = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        if "disabled" in body:
            body["disabled"] = body["disabled"] in ("1", "true", "on")
    changes = {k: body[k] for k in ("role", "password", "disabled") if k in body}
    if username == _actor(request) and (
        changes.get("disabled") or changes.get("role") not in (None, "admin")
    ):
        message = "you cannot disable or demote yourself"
        if request.method == "PATCH":
            raise HTTPException(400, message)
        return _back(message)
    try:
        await run_in_threadpool(lambda: auth_store.update_user(state.engine, username, **changes))
    except (ValueError, TypeError) as exc:
        if request.method == "PATCH":
            raise HTTPException(400, str(exc)) from None
        return _back(str(exc))
    for action, detail in user_change_entries(changes):
        audit(request, action, username, detail)
    if request.method == "PATCH":
        return JSONResponse({"updated": username})
    return _back()


async def tokens_api(request: Request) -> Response:
    state = app_state(request)
    if request.method == "GET":
        return JSONResponse(
            {"tokens": await run_in_threadpool(auth_store.list_tokens, state.engine)}
        )
    body = await json_object(request)
    try:
        token_id, token = await run_in_threadpool(
            auth_store.create_token, state.engine, str(body.get("name", "")),
            str(body.get("role", "viewer")), _actor(request),
        )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    detail = {"role": body.get("role"), "name": body.get("name")}
    audit(request, "token.create", str(token_id), detail)
    return JSONResponse({"id": token_id, "token": token, "shown_once": True}, status_code=201)


async def create_token_form(request: Request) -> Response:
    state = app_state(request)
    form = await request.form()
    try:
        token_id, token = await run_in_threadpool(
            auth_store.create_token, state.engine, str(form.get("name", "")),
            str(form.get("role", "viewer")), _actor(request),
        )  # fmt: skip
    except ValueError as exc:
        return _back(str(exc))
    audit(request, "token.create", str(token_id),
          {"role": str(form.get("role")), "name": str(form.get("name"))})  # fmt: skip
    return await admin_page(request, created_token=token)


async def revoke_token(request: Request) -> Response:
    state = app_state(request)
    token_id = request.path_params["token_id"]
    revoked = token_id <= MAX_ROW_ID and await run_in_threadpool(
        auth_store.revoke_token, state.engine, token_id
    )
    if revoked:
        audit(request, "token.revoke", str(token_id), {})
    if request.method == "DELETE":
        if not revoked:
            raise HTTPException(404, "no such active token")
        return JSONResponse({"revoked": token_id})
    return _back(None if revoked else "no such active token")


routes = [
    Route("/admin", admin_page),
    Route("/api/admin/users", users_api, methods=["GET", "POST"]),
    Route("/admin/users", create_user_form, methods=["POST"]),
    Route("/admin/users/{username}", update_user, methods=["POST"]),
    Route("/api/admin/users/{username}", update_user, methods=["PATCH"]),
    Route("/api/admin/tokens", tokens_api, methods=["GET", "POST"]),
    Route("/admin/tokens", create_token_form, methods=["POST"]),
    Route("/admin/tokens/{token_id:int}/revoke", revoke_token, methods=["POST"]),
    Route("/api/admin/tokens/{token_id:int}", revoke_token, methods=["DELETE"]),
]
