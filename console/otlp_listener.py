"""The OTLP/HTTP receiver on a port of its own (`server.otlp_port`, 4318 by convention).

OpenTelemetry exporters default to `http://<host>:4318/v1/traces`, as the Collector's
and Jaeger's OTLP receivers listen there. This listener lets them reach eventscope
without pointing them at the console's port. It is a second way into the same receiver:
the handler is `console.views.otlp`'s, and the console's access-control middleware
authorises it with the console's rule for `/v1/traces` (an operator API token when auth
is on, open when it is off). Nothing else of the console is served here.

`OtlpListener` is a background service: uvicorn serving this small app as a task in the
event loop of the process, started with the collectors (modes "all" and "collect").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from collectors.services import Health, ServiceStatus
from console.auth.middleware import AccessControl
from console.auth.permissions import permission_table
from console.http_server import server_config
from console.state import AppState
from console.views import otlp
from console.web.endpoints import routes_of

log = logging.getLogger("eventscope.otlp")

START_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 5

ABOUT = (
    "eventscope OTLP/HTTP receiver\n"
    "POST /v1/traces with application/x-protobuf or application/json (gzip allowed)\n"
)


class OtlpListenerError(RuntimeError):
    """The listener could not start; the message says where and why."""


async def about(request: Request) -> PlainTextResponse:
    return PlainTextResponse(ABOUT)


def otlp_listener_app(state: AppState) -> Starlette:
    """`POST /v1/traces` and a short `GET /`; every other path is a 404."""
    receiver: list[BaseRoute] = routes_of(otlp.ENDPOINTS)
    routes = [Route("/", about, methods=["GET"]), *receiver]
    # Only the receiver's route goes to the middleware: it then applies the console's
    # permission for /v1/traces, and lets `/` and unknown paths through to 200/404/405.
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                AccessControl,
                state=state,
                routes=receiver,
                permissions=permission_table(otlp.ENDPOINTS),
            )
        ],
    )
    app.state.eventscope = state
    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a running process: the console's server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; OSError (e.g. address in use) when that fails."""
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address, family=family)


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    """What to tell the user when the OTLP port cannot be bound."""
    errno = exc.errno or 0  # name-resolution errors carry negative numbers
    reason = os.strerror(errno).lower() if errno > 0 else str(exc)
    return (
        f"cannot listen for OTLP/HTTP on {host}:{port}: {reason} "
        "(server.otlp_port / EVENTSCOPE_OTLP_PORT: choose a free port, or 0 for none)"
    )


def port_problem(host: str, port: int) -> str | None:
    """Why the OTLP port cannot be bound right now, or None when it can: checked before
    the web server starts, whose failed start-up would print a traceback after it."""
    try:
        bind(host, port).close()
    except OSError as exc:
        return cannot_listen(host, port, exc)
    return None


class OtlpListener:
    def __init__(self, state: AppState) -> None:
        server = state.settings.server
        self.state = state
        self.host = server.otlp_bind_host
        self.port = server.otlp_port
        self.name = "otlp-listener"
        self.health = Health()
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1/traces"

    async def start(self) -> None:
        try:
            listening = bind(self.host, self.port)
        except OSError as exc:
            message = cannot_listen(self.host, self.port, exc)
            log.error("%s", message)
            raise OtlpListenerError(message) from None
        config = server_config(
            otlp_listener_app(self.state),
            self.state.settings.server,
            self.host,
            self.port,
            lifespan="off",  # the console's lifespan runs once, in the console's server
            log_config=None,  # leave the process's logging as the console set it up
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = _EmbeddedServer(config)
        self._serving = asyncio.create_task(self._serve(self._server, [listening]), name=self.name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if self._serving.done() or time.monotonic() > deadline:
                listening.close()
                await self.stop()
                message = f"the OTLP/HTTP listener on {self.host}:{self.port} did not start"
                log.error("%s", message)
                raise OtlpListenerError(message)
            await asyncio.sleep(0.01)
        log.info("OTLP/HTTP receiver listening on %s", self.url)
        self.health.running = True
        self.health.succeeded()

    def status(self) -> ServiceStatus:
        if self._serving is not None and self._serving.done() and self.health.running:
            self.health.running = False
            self.health.failed("the listener stopped")
        return self.health.status()

    async def _serve(self, server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        try:
            await server.serve(sockets=sockets)
        except SystemExit as exc:  # uvicorn's way out; it must not end the whole event loop
            raise OtlpListenerError(f"uvicorn exited with status {exc.code}") from None
        finally:
            if not server.should_exit:
                log.error("the OTLP/HTTP listener on %s stopped unexpectedly", self.url)

    async def stop(self) -> None:
        self.health.running = False
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        try:
            await self._serving
        except Exception as exc:
            log.warning("the OTLP/HTTP listener ended with %r", exc)
        finally:
            self._server = None
            self._serving = None
