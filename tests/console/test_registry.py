"""Every route comes from one declaration, with a role, and every JSON twin with a shape."""

from __future__ import annotations

import importlib
import pkgutil

from starlette.routing import Mount, Route

import console.views
from console.app import create_app
from console.auth.roles import PUBLIC, ROLES
from console.views import registry
from console.web.endpoints import check_unique
from tests.conftest import make_settings


def test_every_view_module_that_declares_endpoints_is_registered() -> None:
    registered = {area.__name__ for area in (*registry.COLLECTOR_AREAS, *registry.CONSOLE_AREAS)}
    declaring = set()
    for info in pkgutil.iter_modules(console.views.__path__):
        module = importlib.import_module(f"console.views.{info.name}")
        if isinstance(getattr(module, "ENDPOINTS", None), list):
            declaring.add(module.__name__)
    assert sorted(declaring - registered) == []


def test_each_declaration_has_a_role_and_each_json_twin_a_shape() -> None:
    endpoints = registry.all_endpoints()
    check_unique(endpoints)
    for endpoint in endpoints:
        assert endpoint.role in (*ROLES, PUBLIC), endpoint
        if endpoint.api is not None:
            assert endpoint.response is not None, f"{endpoint.api}: declare its response"
            assert endpoint.summary, f"{endpoint.api}: say what it does"


def test_every_route_of_the_app_comes_from_a_declaration(tmp_path) -> None:
    app = create_app(make_settings(None, f"sqlite:///{tmp_path / 'x.db'}"), mode="console")
    declared = {
        (path, method) for endpoint in registry.all_endpoints()
        for path, method, _ in endpoint.routes()
    }  # fmt: skip
    served = set()
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path.startswith("/static"), route.path
        elif isinstance(route, Route):
            served |= {(route.path, method) for method in route.methods or () if method != "HEAD"}
    assert served == declared
