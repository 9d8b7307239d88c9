"""One declaration serves the page and its JSON twin, with the permission and the shape."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from typing_extensions import TypedDict

from console.app import create_app
from console.auth.permissions import permission_table
from console.web.endpoints import Call, Endpoint, Reply, check_unique, routes_of
from console.web.openapi import build_document
from console.web.schema import q, text
from tests.conftest import make_settings


class GreetingJson(TypedDict):
    greeting: str
    count: int


async def greet(call: Call) -> Reply:
    name = call.query.get("name", "world")
    if name == "nobody":
        return Reply({}, redirect="/elsewhere")
    return Reply(GreetingJson(greeting=f"hello {name}", count=1), page={"extra": "only for HTML"})


GREET = Endpoint(
    greet, "viewer", path="/greet", api="/api/greet", template="error.html",
    summary="A greeting.", params=(q("name", text(20)),), response=GreetingJson,
)  # fmt: skip


def test_one_declaration_gives_both_routes_their_permission_and_an_operation() -> None:
    assert [(r.path, r.methods) for r in routes_of([GREET])] == [  # type: ignore[attr-defined]
        ("/greet", {"GET", "HEAD"}),
        ("/api/greet", {"GET", "HEAD"}),
    ]
    table = permission_table([GREET])
    assert table["/greet"].roles == {"GET": "viewer"} == table["/api/greet"].roles
    operation = build_document([GREET])["paths"]["/api/greet"]["get"]
    assert operation["x-required-role"] == "viewer"
    assert operation["parameters"][0]["name"] == "name"
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/GreetingJson"}
    component: dict[str, Any] = build_document([GREET])["components"]["schemas"]["GreetingJson"]
    assert component["required"] == ["greeting", "count"]


def test_the_twin_answers_data_the_page_renders_and_a_form_post_redirects(tmp_path) -> None:
    from starlette.applications import Starlette

    real = create_app(make_settings(None, f"sqlite:///{tmp_path / 'x.db'}"), mode="console")
    app = Starlette(routes=routes_of([GREET]))
    app.state.eventscope = real.state.eventscope
    with TestClient(app) as client:
        assert client.get("/api/greet?name=ada").json() == {"greeting": "hello ada", "count": 1}
        page = client.get("/greet?name=ada")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        moved = client.get("/greet?name=nobody", follow_redirects=False)
        assert (moved.status_code, moved.headers["location"]) == (303, "/elsewhere")
        assert client.get("/api/greet?name=nobody").json() == {}


def test_a_path_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="GET /greet is declared twice"):
        check_unique([GREET, GREET])


def test_a_declaration_needs_a_path() -> None:
    with pytest.raises(ValueError, match="needs a path"):
        Endpoint(greet, "viewer")
