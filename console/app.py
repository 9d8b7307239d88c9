"""The Starlette application factory.

`mode` decides what runs in this process: "all" (web app and background services, the
embedded default), "console" (web app only) or "collect" (background services only,
served by a minimal app with the health endpoints).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from collectors.config import Settings
from collectors.index import migrate
from collectors.index.engine import StatementTimeout, create_index_engine
from collectors.services import ServiceGroup
from console import assets, composition
from console.auth.middleware import AccessControl
from console.auth.permissions import permission_table
from console.composition import ServiceFactory
from console.health_listener import HealthListener
from console.settings import area_settings
from console.state import AppState, app_state
from console.stores import auth as auth_store
from console.templating import make_templates
from console.views import registry
from console.web.admission import Busy
from console.web.endpoints import check_unique, routes_of
from console.web.index_errors import INDEX_ERRORS, RETRY_AFTER_S, index_unreachable

log = logging.getLogger("eventscope")

MODES = ("all", "console", "collect")


def create_app(
    settings: Settings,
    mode: str = "all",
    *,
    engine: Engine | None = None,
    service_factory: ServiceFactory | None = None,
) -> Starlette:
    """The web app of `mode`; its lifespan runs migrations, then starts the background
    services that `service_factory` builds (console/composition.py's by default)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    areas = area_settings(settings)
    engine = engine or create_index_engine(settings.index.url)
    state = AppState(settings=settings, areas=areas, engine=engine, templates=make_templates(),
                     mode=mode)  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        server = settings.server
        health = None
        if server.health_port:  # first: it answers while the rest starts
            health = HealthListener(server.host, server.health_port, server.loop_stall_s)
            await health.start()
        migrate.upgrade(engine)
        if mode != "collect" and settings.server.auth == "on":
            _create_first_admin(engine)
        if mode in ("all", "collect"):
            build = service_factory or composition.background_services
            state.services = ServiceGroup(build(state))
            await state.services.start()
        try:
            yield
        finally:
            await state.services.stop()
            for client in state.registries.values():  # the schema pages' connections
                client.close()
            if health is not None:
                await health.stop()

    endpoints = registry.collector_endpoints()
    if mode != "collect":
        endpoints += registry.console_endpoints()
    check_unique(endpoints)
    routes: list[BaseRoute] = routes_of(endpoints)
    if mode != "collect":
        routes += static_routes()
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,  # type: ignore[dict-item]
            Busy: _busy,
            StatementTimeout: _too_slow,
            **dict.fromkeys(INDEX_ERRORS, _index_error),
        },
        middleware=[
            Middleware(
                AccessControl, state=state, routes=routes, permissions=permission_table(endpoints)
            )
        ],
    )
    app.state.eventscope = state
    return app


def static_routes() -> list[BaseRoute]:
    """/static from the package (or checkout); /static/vendor from wherever it was fetched."""
    vendor = StaticFiles(directory=str(assets.vendor_dir()), check_dir=False)
    return [
        Mount("/static/vendor", app=vendor, name="vendor"),
        Mount("/static", app=StaticFiles(directory=str(assets.STATIC_DIR)), name="static"),
    ]


def _create_first_admin(engine: Engine) -> None:
    """An empty index gets an administrator, so that nobody starts locked out."""
    generated = auth_store.ensure_admin(engine, os.environ.get("EVENTSCOPE_ADMIN_PASSWORD"))
    if generated:
        print(
            "eventscope: created user 'admin' with password "
            f"{generated}  (shown once; change it in Admin)",
            flush=True,
        )


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    answer = _error_page(request, exc.status_code, str(exc.detail))
    answer.headers.update(exc.headers or {})
    return answer


async def _busy(request: Request, exc: Exception) -> Response:
    """Too many searches at once (console/web/admission.py): come back shortly."""
    assert isinstance(exc, Busy)
    answer = _error_page(request, 429, str(exc))
    answer.headers["Retry-After"] = str(exc.retry_after_s)
    return answer


async def _too_slow(request: Request, exc: Exception) -> Response:
    """The index did not finish within server.search_timeout_s and was stopped."""
    timeout_s = app_state(request).settings.server.search_timeout_s
    detail = (
        f"The search took longer than {timeout_s:g} s and was stopped; narrow it "
        "(a topic, a time range, an id instead of text) or try again when the console is "
        "less busy."
    )
    answer = _error_page(request, 503, detail)
    answer.headers["Retry-After"] = str(RETRY_AFTER_S)
    return answer


async def _index_error(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: the index cannot be reached: %s", request.method, request.url.path,
                str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)  # fmt: skip
    answer = _error_page(request, 503, index_unreachable(exc))
    answer.headers["Retry-After"] = str(RETRY_AFTER_S)
    return answer


def _error_page(request: Request, status: int, detail: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": detail}, status_code=status)
    state = app_state(request)
    return state.templates.TemplateResponse(
        request, "error.html", {"status": status, "detail": detail}, status_code=status
    )
