"""Each endpoint is declared once; routes, permissions, OpenAPI and the page/JSON twin come
from that declaration.

An `Endpoint` names its path (an HTML page, or a route that answers in a format of its
own) and/or its JSON twin's path, the method, the role it needs, the page's template,
the request and response shapes, and a handler. The handler receives a `Call` and
returns a `Reply` holding data: the JSON twin answers the data as JSON, the page renders
the template with the data (plus whatever only the page needs).
A handler that must answer something else (a stream, Prometheus text, protobuf) returns
a Starlette `Response` as is.

    Endpoint(dlq_topic, role=VIEWER, path="/dlq/{cluster}/{topic}",
             api="/api/dlq/{cluster}/{topic}", template="dlq_topic.html",
             summary="One DLQ ...", response=DlqTopicJson)
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collectors.config import Settings
from console.state import AppState, app_state

if TYPE_CHECKING:
    from console.web.schema import Param

Handler = Callable[["Call"], Awaitable["Reply | Response"]]

PATH_PARAMETER = re.compile(r"{(\w+)(?::(\w+))?}")


@dataclass(frozen=True)
class Reply:
    """What a handler found. `data` is the JSON twin's body and the page's context; `page`
    adds what only the page needs (form values, links). After a form's POST the page is
    sent to `redirect` (303) while the JSON twin still answers the data."""

    data: Mapping[str, Any]
    page: Mapping[str, Any] = field(default_factory=dict)
    status: int = 200
    redirect: str | None = None
    template: str | None = None  # another template than the endpoint's (a form's errors)


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    role: str
    path: str | None = None  # the page (HTML), or a route that answers in its own format
    api: str | None = None  # path of the JSON twin
    method: str = "GET"
    api_method: str | None = None  # when the twin uses another verb (DELETE for a form's POST)
    template: str | None = None
    partial: str | None = None  # the template an htmx request gets (hx-request header)
    summary: str = ""
    description: str = ""
    params: tuple[Param, ...] = ()
    body: Any = None  # the JSON body: a TypedDict or a JSON Schema mapping
    response: Any = None  # the twin's answer: a TypedDict or a JSON Schema mapping
    status: int = 200  # the twin's success status
    other_responses: tuple[tuple[int, str, Any], ...] = ()  # (status, description, shape)
    errors: tuple[int, ...] = ()  # beyond 401 and 403
    csrf_exempt: bool = False  # bodies a cross-site form cannot send (protobuf, JSON only)

    def __post_init__(self) -> None:
        if self.path is None and self.api is None:
            raise ValueError(f"{self.handler.__name__}: an endpoint needs a path or an api path")

    @property
    def json_method(self) -> str:
        return self.api_method or self.method

    @property
    def query_names(self) -> frozenset[str]:
        return frozenset(param.name for param in self.params if param.where == "query")

    @property
    def checks_query(self) -> bool:
        """Whether the JSON twin refuses query parameters it does not declare (/api routes)."""
        return self.api is not None and self.api.startswith("/api/")

    def routes(self) -> list[tuple[str, str, bool]]:
        """(path, method, is the JSON twin) of every route this endpoint serves."""
        found = []
        if self.path is not None:
            found.append((self.path, self.method, False))
        if self.api is not None:
            found.append((self.api, self.json_method, True))
        return found


MAX_JSON_BODY_BYTES = 1 << 20


# On a 413 the server closes the connection: left open, it would read (and drop) the rest
# of the refused body, however large, before the next request.
CLOSE_AFTER = {"Connection": "close"}


class BodyTooLarge(Exception):
    """A request body longer than its route accepts."""


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused (BodyTooLarge) as soon as more than `max_bytes` arrive, or at
    once when Content-Length says so."""
    message = f"request body larger than {max_bytes} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(message)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(message)
        chunks.append(chunk)
    return b"".join(chunks)


class Call:
    """One request to an endpoint, with what handlers read from it."""

    def __init__(self, request: Request, endpoint: Endpoint, api: bool) -> None:
        self.request = request
        self.endpoint = endpoint
        self.api = api

    @property
    def state(self) -> AppState:
        return app_state(self.request)

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def path(self) -> Mapping[str, Any]:
        return self.request.path_params

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def remote(self) -> str | None:
        """The client's address, as the audit log records it."""
        client = self.request.client
        return client.host if client else None

    @property
    def actor(self) -> str:
        """Who acts: the signed-in principal's name, else the client's address."""
        principal = getattr(self.request.state, "principal", None)
        name = getattr(principal, "name", None)
        if isinstance(name, str) and name:
            return name[:100]
        return self.remote or "anonymous"

    async def json_object(self, max_bytes: int = MAX_JSON_BODY_BYTES) -> dict[str, Any]:
        """The body as a JSON object ({} when empty): 413 past `max_bytes` (counted while it
        arrives, so a huge body never sits in memory), 400 for anything but a JSON object,
        including one nested too deeply to read."""
        try:
            raw = await read_capped(self.request, max_bytes)
        except BodyTooLarge as exc:
            raise HTTPException(413, str(exc), headers=CLOSE_AFTER) from None
        except ClientDisconnect:  # gone, or cut off by the server's body timeout
            raise HTTPException(
                400, "the client disconnected before the body was complete"
            ) from None
        try:
            body = json.loads(raw or b"{}")
        except RecursionError:
            raise HTTPException(400, "the body's JSON is nested too deeply") from None
        except ValueError:
            raise HTTPException(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "the body must be a JSON object")
        return body


MAX_NAME_SHOWN = 100


def unknown_parameter(endpoint: Endpoint, request: Request) -> Response | None:
    """The 400 for a query parameter the endpoint does not declare, on its JSON twin.

    Why only there: a misspelt API filter used to be ignored (`/api/events?q=order` listed
    every event, the parameter is `text`), and a script cannot see that; the OpenAPI
    document lists what each operation takes. Pages keep ignoring extra parameters: htmx
    and the pages' scripts add some of their own, and a bookmark or a link from an older
    version should still open the page rather than an error.
    """
    known = endpoint.query_names
    for name in request.query_params:
        if name not in known:
            shown = name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "…"
            takes = ", ".join(sorted(known)) if known else "none"
            error = f"unknown query parameter {shown!r} (this operation takes: {takes})"
            return JSONResponse({"error": error, "field": shown}, status_code=400)
    return None


def _serve(endpoint: Endpoint, api: bool) -> Callable[[Request], Awaitable[Response]]:
    check_query = api and endpoint.checks_query

    async def answer(request: Request) -> Response:
        if check_query and (refused := unknown_parameter(endpoint, request)) is not None:
            return refused
        reply = await endpoint.handler(Call(request, endpoint, api))
        if isinstance(reply, Response):
            return reply
        if api:
            return JSONResponse(dict(reply.data), status_code=reply.status)
        if reply.redirect is not None:
            return RedirectResponse(reply.redirect, status_code=303)
        template = reply.template or endpoint.template
        if endpoint.partial and request.headers.get("hx-request") and reply.template is None:
            template = endpoint.partial
        if template is None:
            return JSONResponse(dict(reply.data), status_code=reply.status)
        context = {**reply.data, **reply.page}
        return app_state(request).templates.TemplateResponse(
            request, template, context, status_code=reply.status
        )

    answer.__name__ = endpoint.handler.__name__
    return answer


class AnyTextConvertor(Convertor[str]):
    """`{name:text}`: like Starlette's `path`, but a line break matches too. Consumer group
    and saga ids are any string, and a group named "a\\nb" must still have its page."""

    regex = "(?s:.+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", AnyTextConvertor())


def routes_of(endpoints: Iterable[Endpoint]) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for endpoint in endpoints:
        for path, method, api in endpoint.routes():
            routes.append(Route(path, _serve(endpoint, api), methods=[method]))
    return routes


def check_unique(endpoints: Iterable[Endpoint]) -> None:
    """Two declarations of one path and method would leave one of them unreachable."""
    seen: set[tuple[str, str]] = set()
    for endpoint in endpoints:
        for path, method, _ in endpoint.routes():
            if (path, method) in seen:
                raise ValueError(f"{method} {path} is declared twice")
            seen.add((path, method))
