"""The OpenAPI document: it describes every /api route of the app, and is valid OpenAPI 3.1."""

from __future__ import annotations

import re

import pytest
import schemathesis
from starlette.testclient import TestClient

from console.app import create_app
from console.auth.permissions import permission_table, required_role
from console.stores import auth as auth_store
from console.views import registry
from console.views.openapi import build_document
from console.web.openapi import openapi_path
from tests.conftest import make_settings
from tests.console.auth.test_route_permissions import declared_routes


@pytest.fixture(scope="module")
def console(tmp_path_factory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("openapi") / "index.db"
    settings = make_settings(None, f"sqlite:///{path}", server={"auth": "on"})
    app = create_app(settings, mode="console")
    with TestClient(app, base_url="http://testserver") as client:
        _, token = auth_store.create_token(app.state.eventscope.engine, "docs", "viewer", "test")
        yield app, client, token


PERMISSIONS = permission_table(registry.all_endpoints())


def api_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {
        (openapi_path(path), method)
        for path, method in declared_routes(app)
        if path.startswith("/api/") or path in ("/healthz", "/readyz")
    }


def described() -> set[tuple[str, str]]:
    paths = build_document()["paths"]
    return {(path, method.upper()) for path, item in paths.items() for method in item}


def test_every_api_route_is_described_and_nothing_else(console) -> None:
    app, _, _ = console
    routes = api_routes(app)
    assert sorted(routes - described()) == [], "these /api routes are not in the document"
    assert sorted(described() - routes) == [], "these operations have no route"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = build_document("http://127.0.0.1:8600")
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document).validate()


def test_path_parameters_match_the_route_templates() -> None:
    for path, item in build_document()["paths"].items():
        in_path = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == in_path, (method, path)


def test_each_operation_states_its_role_errors_and_security() -> None:
    document = build_document()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    for template, rule in PERMISSIONS.items():
        for method in rule.roles:
            operation = document["paths"].get(openapi_path(template), {}).get(method.lower())
            if operation is None:
                continue  # a page, not a JSON twin
            role = required_role(rule, method)
            assert operation["x-required-role"] == role, (method, template)
            if role != "public":
                assert {"401", "403"} <= set(operation["responses"]), (method, template)
            if method in ("POST", "PATCH") and operation.get("requestBody"):
                assert "400" in operation["responses"], (method, template)
    actions = document["paths"]["/api/actions"]["post"]
    assert {"200", "201", "400", "413"} <= set(actions["responses"])
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]


def test_limits_follow_what_the_views_validate() -> None:
    events = build_document()["paths"]["/api/events"]["get"]
    limit = next(p for p in events["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}
    saga = build_document()["paths"]["/api/sagas"]["get"]
    sort = next(p for p in saga["parameters"] if p["name"] == "sort")
    assert sort["schema"]["enum"] == ["priority", "newest", "oldest", "recent", "longest"]


def test_the_console_serves_the_document_to_authenticated_callers(console) -> None:
    _, client, token = console
    assert client.get("/api/openapi.json").status_code == 401
    response = client.get("/api/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == build_document("http://testserver")
