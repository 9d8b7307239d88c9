"""Administration: users and API tokens (admin role only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console.auth.roles import ADMIN, ROLES
from console.stores import auth as auth_store
from console.stores.audit import user_change_entries
from console.views.auth import audit
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import BOOLEAN, STRING, enum, integer, p, shape, text

MAX_ROW_ID = 2**63 - 1  # ids past this are not in the index (and overflow its integer type)


class UsersJson(TypedDict):
    users: list[dict[str, Any]]  # id, username, role, disabled, created_at_ms, ...


class TokensJson(TypedDict):
    tokens: list[dict[str, Any]]  # id, name, role, prefix, created_by, ..., never the secret


class CreatedTokenJson(TypedDict):
    id: int
    token: str
    shown_once: bool


async def admin_page(call: Call, created_token: str | None = None) -> Reply:
    users = await run_in_threadpool(auth_store.list_users, call.engine)
    tokens = await run_in_threadpool(auth_store.list_tokens, call.engine)
    page = {"users": users, "tokens": tokens, "roles": ROLES, "created_token": created_token,
            "error": call.query.get("error")}  # fmt: skip
    return Reply({}, page=page, template="admin.html")


def _back(error: str | None = None) -> str:
    return "/admin" + (f"?{urlencode({'error': error})}" if error else "")


async def list_users(call: Call) -> Reply:
    return Reply(UsersJson(users=await run_in_threadpool(auth_store.list_users, call.engine)))


async def create_user(call: Call) -> Reply:
    if call.api:
        body = await call.json_object()
    else:
        body = {k: str(v) for k, v in (await call.request.form()).items()}
    username, role = str(body.get("username", "")), str(body.get("role", "viewer"))
    try:
        await run_in_threadpool(
            auth_store.create_user, call.engine, username, str(body.get("password", "")), role
        )
    except ValueError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return Reply({}, redirect=_back(str(exc)))
    await audit(call, "user.create", username, {"role": role})
    return Reply({"created": username}, status=201, redirect=_back())


async def update_user(call: Call) -> Reply:
    username = call.path["username"]
    if call.api:
        body = await call.json_object()
    else:
        form = await call.request.form()
        body = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        if "disabled" in body:
            body["disabled"] = body["disabled"] in ("1", "true", "on")
    changes = {k: body[k] for k in ("role", "password", "disabled") if k in body}
    if username == call.actor and (
        changes.get("disabled") or changes.get("role") not in (None, "admin")
    ):
        message = "you cannot disable or demote yourself"
        if call.api:
            raise HTTPException(400, message)
        return Reply({}, redirect=_back(message))
    try:
        await run_in_threadpool(lambda: auth_store.update_user(call.engine, username, **changes))
    except (ValueError, TypeError) as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return Reply({}, redirect=_back(str(exc)))
    for action, detail in user_change_entries(changes):
        await audit(call, action, username, detail)
    return Reply({"updated": username}, redirect=_back())


async def list_tokens(call: Call) -> Reply:
    return Reply(TokensJson(tokens=await run_in_threadpool(auth_store.list_tokens, call.engine)))


async def create_token(call: Call) -> Reply:
    if call.api:
        body = await call.json_object()
    else:
        body = {k: str(v) for k, v in (await call.request.form()).items()}
    name, role = str(body.get("name", "")), str(body.get("role", "viewer"))
    try:
        token_id, token = await run_in_threadpool(
            auth_store.create_token, call.engine, name, role, call.actor
        )
    except ValueError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        return Reply({}, redirect=_back(str(exc)))
    await audit(call, "token.create", str(token_id), {"role": role, "name": name})
    if call.api:
        return Reply(CreatedTokenJson(id=token_id, token=token, shown_once=True), status=201)
    return await admin_page(call, created_token=token)


async def revoke_token(call: Call) -> Reply:
    token_id = call.path["token_id"]
    revoked = token_id <= MAX_ROW_ID and await run_in_threadpool(
        auth_store.revoke_token, call.engine, token_id
    )
    if revoked:
        await audit(call, "token.revoke", str(token_id), {})
    elif call.api:
        raise HTTPException(404, "no such active token")
    return Reply({"revoked": token_id}, redirect=_back(None if revoked else "no such active token"))


ROLE = enum(*ROLES)
USERNAME = p("username", text(100), "a local user's name")
TOKEN_ID = p("token_id", integer(0), "the token's id")

ENDPOINTS = [
    Endpoint(admin_page, ADMIN, path="/admin", template="admin.html"),
    Endpoint(list_users, ADMIN, api="/api/admin/users", summary="Local users.", response=UsersJson),
    Endpoint(
        create_user, ADMIN, path="/admin/users", api="/api/admin/users", method="POST",
        summary="Create a local user.",
        body={
            "type": "object",
            "properties": {"username": text(100), "password": STRING, "role": ROLE},
            "required": ["username", "password"],
        },
        status=201, response=shape(created=STRING), errors=(400,),
    ),
    Endpoint(
        update_user, ADMIN, path="/admin/users/{username}", api="/api/admin/users/{username}",
        method="POST", api_method="PATCH",
        summary="Change a user's role or password, or disable them.", params=(USERNAME,),
        body={
            "type": "object",
            "properties": {"role": ROLE, "password": STRING, "disabled": BOOLEAN},
        },
        response=shape(updated=STRING), errors=(400,),
    ),
    Endpoint(
        list_tokens, ADMIN, api="/api/admin/tokens", summary="API tokens (never the secrets).",
        response=TokensJson,
    ),
    Endpoint(
        create_token, ADMIN, path="/admin/tokens", api="/api/admin/tokens", method="POST",
        summary="Create an API token; the token is in this answer only.",
        body={"type": "object", "properties": {"name": text(100), "role": ROLE}},
        status=201, response=CreatedTokenJson, errors=(400,),
    ),
    Endpoint(
        revoke_token, ADMIN, path="/admin/tokens/{token_id:int}/revoke",
        api="/api/admin/tokens/{token_id:int}", method="POST", api_method="DELETE",
        summary="Revoke an API token.", params=(TOKEN_ID,),
        response=shape(revoked=integer()), errors=(404,),
    ),
]  # fmt: skip
