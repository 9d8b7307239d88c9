"""The access-control middleware: identify the caller, enforce the route's permission,
check CSRF on state-changing browser requests, and add security headers to every answer.

Callers are identified, in order, by an API token (`Authorization: Bearer esk_...`), a
trusted reverse-proxy header (only when configured), or the session cookie. With
`auth = "off"` (allowed only on loopback) everyone is the local administrator, but CSRF
and the Origin check still apply: any web page the user visits could otherwise post to
the console on localhost.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount, Route

from console.auth.permissions import Rule, required_role
from console.auth.roles import PUBLIC, allows
from console.state import AppState
from console.stores import auth as auth_store
from console.stores.auth import Principal
from console.web.index_errors import INDEX_ERRORS, index_unreachable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "eventscope_session"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_FORM_BYTES = 1024 * 1024

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def route_template(routes: list[BaseRoute], scope: Scope) -> str | None:
    """The path template of the route that will answer, as written in the route table.

    None when no route fully matches: the application then answers 404 or 405 itself.
    """
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL and isinstance(route, Route | Mount):
            return route.path
    return None


class AccessControl:
    def __init__(
        self, app: ASGIApp, state: AppState, routes: list[BaseRoute], permissions: dict[str, Rule]
    ) -> None:
        self.app = app
        self.state = state
        self.routes = routes
        self.permissions = permissions
        self.auth_off = state.settings.server.auth == "off"
        # With auth off there is no session: CSRF tokens derive from a per-process secret.
        self._local_csrf = secrets.token_urlsafe(32)
        self._look_ups: dict[tuple[str, str], asyncio.Future[Principal | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = headers
            await send(message)

        request = Request(scope)
        template = route_template(self.routes, scope)
        if template is None:  # no such route: the app answers 404/405
            await self.app(scope, receive, send_with_headers)
            return
        rule = self.permissions.get(template)
        method = scope["method"]
        required = required_role(rule, method) if rule else None
        if required is None:  # a route nobody declared a permission for: refuse
            await _deny(send_with_headers, request, 403,
                        "no permission is declared for this route and method")  # fmt: skip
            return
        try:
            principal, problem = await self._identify(request)
        except INDEX_ERRORS as exc:  # sessions and tokens live in the index
            await _deny(send_with_headers, request, 503, index_unreachable(exc))
            return
        if problem:
            await _deny(send_with_headers, request, 401, problem)
            return
        scope.setdefault("state", {})["principal"] = principal
        if required != PUBLIC:
            if principal is None:
                await _login_needed(send_with_headers, request)
                return
            if not allows(principal.role, required):
                detail = f"this needs the {required} role; you are {principal.role}"
                await _deny(send_with_headers, request, 403, detail)
                return
        if method in UNSAFE_METHODS:
            if not _same_origin(request):
                await _deny(send_with_headers, request, 403, "cross-site request refused")
                return
            if (
                principal is not None
                and principal.via != "token"
                and not (rule and rule.csrf_exempt)
            ):
                receive, ok = await _check_csrf(request, receive, principal)
                if not ok and template != "/login":
                    await _deny(send_with_headers, request, 403, "missing or wrong CSRF token")
                    return
        await self.app(scope, receive, send_with_headers)

    async def _identify(self, request: Request) -> tuple[Principal | None, str | None]:
        engine = self.state.engine
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
            principal = await self._shared_look_up(auth_store.token_principal, "token", token)
            return (principal, None) if principal else (None, "invalid or revoked API token")
        header = self.state.settings.server.trusted_proxy_header
        if header and request.headers.get(header):
            name = request.headers[header].strip()[:100]
            role = await run_in_threadpool(auth_store.role_of, engine, name)
            role = role or self.state.settings.server.proxy_default_role
            csrf = _derived_csrf(self._local_csrf, name)
            return Principal(name, role, "proxy", csrf), None
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            principal = await self._shared_look_up(auth_store.session_principal, "session", cookie)
            if principal:
                return principal, None
        if self.auth_off:
            return Principal("local", "admin", "auth-off", self._local_csrf), None
        return None, None

    async def _shared_look_up(
        self, look_up: Callable[[Engine, str], Principal | None], kind: str, secret: str
    ) -> Principal | None:
        """Who holds `secret`; requests that ask while a look-up of the same credential is
        under way share its answer (nothing is kept after it). Why: a script firing 2,000
        requests at once with one token made 2,000 trips through the thread pool before any
        request could even be refused; the answer is as fresh as a look-up of its own."""
        key = (kind, secret)
        flight = self._look_ups.get(key)
        if flight is None:
            flight = asyncio.ensure_future(run_in_threadpool(look_up, self.state.engine, secret))
            self._look_ups[key] = flight
            flight.add_done_callback(lambda _: self._look_ups.pop(key, None))
        return await asyncio.shield(flight)


def _derived_csrf(secret: str, name: str) -> str:
    return hmac.new(secret.encode(), name.encode(), "sha256").hexdigest()


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or a same-origin request from an older browser
        return True
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def _check_csrf(
    request: Request, receive: Receive, principal: Principal
) -> tuple[Receive, bool]:
    """Compare the X-CSRF-Token header or the form's csrf_token with the caller's token.

    Reading a form consumes the body, so it is replayed to the application afterwards.
    """
    expected = principal.csrf_token or ""
    supplied = request.headers.get("x-csrf-token")
    if supplied is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > MAX_FORM_BYTES:
                    return receive, False
            fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
            values = fields.get("csrf_token")
            supplied = values[0] if values else None
            receive = _replay(body)
        elif content_type.startswith("multipart/form-data"):
            return receive, False
    ok = bool(expected) and supplied is not None and hmac.compare_digest(supplied, expected)
    return receive, ok


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path in ("/v1/traces", "/metrics"):
        return False
    return "text/html" in request.headers.get("accept", "") or request.method == "GET"


async def _login_needed(send: Send, request: Request) -> None:
    if _wants_html(request) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = "/login?next=" + quote(target, safe="")
        await _respond(send, 303, b"", "text/plain", [(b"location", location.encode())])
        return
    await _respond(
        send, 401, json.dumps({"error": "authentication required"}).encode(),
        "application/json", [(b"www-authenticate", b'Bearer realm="eventscope"')],
    )  # fmt: skip


async def _deny(send: Send, request: Request, status: int, detail: str) -> None:
    if _wants_html(request):
        body = (
            "<!doctype html><meta charset=utf-8><title>eventscope</title>"
            f"<h1>{status}</h1><p>{_escape(detail)}</p><p><a href=/>Back</a></p>"
        ).encode()
        await _respond(send, status, body, "text/html; charset=utf-8")
        return
    await _respond(send, status, json.dumps({"error": detail}).encode(), "application/json")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})
