"""Login, logout and who-am-I."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from console.auth.middleware import SESSION_COOKIE
from console.auth.throttle import LoginThrottle
from console.state import app_state
from console.stores import audit as audit_store
from console.stores import auth as auth_store
from console.stores.auth import Principal

throttle = LoginThrottle()


def principal_of(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def remote_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another site after login."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return target if not parts.netloc and not parts.scheme else "/"


async def login(request: Request) -> Response:
    state = app_state(request)
    if request.method == "GET":
        return state.templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(request.query_params.get("next")),
                                    "error": None},
        )  # fmt: skip
    form = await request.form()
    username = str(form.get("username", ""))[:100]
    password = str(form.get("password", ""))[:1000]
    target = _safe_next(str(form.get("next", "/")))
    keys = [f"user:{username.lower()}", f"addr:{remote_of(request)}"]
    wait = throttle.retry_after(keys)
    if wait > 0:
        return state.templates.TemplateResponse(
            request, "login.html",
            {"next": target, "error": f"Too many failed attempts; try again in {wait:.0f} s."},
            status_code=429, headers={"Retry-After": str(int(wait) + 1)},
        )  # fmt: skip
    user = await run_in_threadpool(auth_store.authenticate, state.engine, username, password)
    if user is None:
        throttle.failed(keys)
        audit(request, "auth.login_failed", username, {})
        return state.templates.TemplateResponse(
            request, "login.html", {"next": target, "error": "Wrong user name or password."},
            status_code=401,
        )  # fmt: skip
    throttle.succeeded(keys)
    token, _csrf = await run_in_threadpool(
        auth_store.create_session, state.engine, user["id"], remote_of(request)
    )
    audit(request, "auth.login", user["username"], {}, actor=user["username"])
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=auth_store.SESSION_TTL_S, httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return response


async def logout(request: Request) -> Response:
    state = app_state(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await run_in_threadpool(auth_store.end_session, state.engine, cookie)
    principal = principal_of(request)
    if principal is not None:
        audit(request, "auth.logout", principal.name, {"via": principal.via})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def whoami(request: Request) -> Response:
    principal = principal_of(request)
    if principal is None:
        return JSONResponse({"error": "not logged in"}, status_code=401)
    return JSONResponse({"name": principal.name, "role": principal.role, "via": principal.via})


def audit(
    request: Request, action: str, target: str, detail: dict, actor: str | None = None
) -> None:
    """Write an audit row (best effort: the audit trail never fails a login)."""
    principal = principal_of(request)
    who = actor or (principal.name if principal else "anonymous")
    try:
        audit_store.record(
            app_state(request).engine, who, action, target, detail, remote_of(request)
        )
    except Exception:  # the audit trail must not break logins
        return


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/api/whoami", whoami),
]
