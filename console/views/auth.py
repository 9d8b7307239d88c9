"""Login, logout and who-am-I."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from typing_extensions import TypedDict

from console.auth.middleware import SESSION_COOKIE
from console.auth.roles import PUBLIC, ROLES, VIEWER
from console.auth.throttle import LoginThrottle
from console.stores import audit as audit_store
from console.stores import auth as auth_store
from console.stores.auth import Principal
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, enum, shape

throttle = LoginThrottle()


def principal_of(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another site after login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return target if not parts.netloc and not parts.scheme else "/"


async def audit(
    call: Call, action: str, target: str, detail: dict[str, Any], actor: str | None = None
) -> None:
    """Write an audit row (best effort: the audit trail never fails a login)."""
    try:
        await run_in_threadpool(
            audit_store.record, call.engine, actor or call.actor, action, target, detail,
            call.remote,
        )  # fmt: skip
    except Exception:  # the audit trail must not break logins
        return


async def login(call: Call) -> Reply | Response:
    request = call.request
    if request.method == "GET":
        return Reply({}, page={"next": _safe_next(call.query.get("next")), "error": None})
    form = await request.form()
    username = str(form.get("username", ""))[:100]
    password = str(form.get("password", ""))[:1000]
    target = _safe_next(str(form.get("next", "/")))
    keys = [f"user:{username.lower()}", f"addr:{call.remote or 'unknown'}"]
    wait = throttle.retry_after(keys)
    if wait > 0:
        page = {"next": target, "error": f"Too many failed attempts; try again in {wait:.0f} s."}
        return call.state.templates.TemplateResponse(
            request, "login.html", page, status_code=429,
            headers={"Retry-After": str(int(wait) + 1)},
        )  # fmt: skip
    user = await run_in_threadpool(auth_store.authenticate, call.engine, username, password)
    if user is None:
        throttle.failed(keys)
        await audit(call, "auth.login_failed", username, {}, actor="anonymous")
        page = {"next": target, "error": "Wrong user name or password."}
        return Reply({}, page=page, status=401)
    throttle.succeeded(keys)
    token, _csrf = await run_in_threadpool(
        auth_store.create_session, call.engine, user["id"], call.remote or "unknown"
    )
    await audit(call, "auth.login", user["username"], {}, actor=user["username"])
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=auth_store.SESSION_TTL_S, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return response


async def logout(call: Call) -> Response:
    cookie = call.request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(auth_store.end_session, call.engine, cookie)
    principal = principal_of(call.request)
    if principal is not None:
        await audit(call, "auth.logout", principal.name, {"via": principal.via})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class WhoamiJson(TypedDict):
    name: str
    role: str
    via: str  # session, token, proxy or auth-off


async def whoami(call: Call) -> Reply:
    principal = principal_of(call.request)
    if principal is None:  # the middleware lets no anonymous caller this far
        return Reply({"error": "not logged in"}, status=401)
    return Reply(WhoamiJson(name=principal.name, role=principal.role, via=principal.via))


ENDPOINTS = [
    Endpoint(login, PUBLIC, path="/login", template="login.html"),
    Endpoint(login, PUBLIC, path="/login", method="POST", template="login.html"),
    Endpoint(logout, VIEWER, path="/logout", method="POST"),
    Endpoint(
        whoami, VIEWER, api="/api/whoami", summary="Who the caller is.",
        response=shape(name=STRING, role=enum(*ROLES), via=STRING),
    ),
]  # fmt: skip
