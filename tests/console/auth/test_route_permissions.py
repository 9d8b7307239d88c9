"""Every route declares its permission, and every role gets exactly what it declares."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from console.app import create_app
from console.auth.permissions import permission_table
from console.auth.roles import PUBLIC, ROLES, allows
from console.stores import auth as auth_store
from console.views import registry
from tests.conftest import make_settings

PERMISSIONS = permission_table(registry.all_endpoints())

# Ids that name nothing: a DELETE of token 1 would revoke the test's own viewer token and
# turn every later check of the viewer into a 401.
SAMPLE = {"int": "999999", "path": "x", "str": "x"}


def concrete(template: str) -> str:
    return re.sub(r"{(\w+)(?::(\w+))?}", lambda m: SAMPLE.get(m.group(2) or "str", "x"), template)


def declared_routes(app) -> list[tuple[str, str]]:
    pairs = []
    for route in app.routes:
        if isinstance(route, Mount):
            pairs.append((route.path, "GET"))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    pairs.append((route.path, method))
    return pairs


@pytest.fixture(autouse=True)
def fresh_login_throttle():
    """Failed logins of one test must not throttle the next one."""
    from console.views.auth import throttle

    throttle._failures.clear()


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    path = tmp_path_factory.mktemp("perm") / "index.db"
    settings = make_settings(None, f"sqlite:///{path}", server={"auth": "on"})
    app = create_app(settings, mode="console")
    with TestClient(app, base_url="http://testserver") as client:
        engine = app.state.eventscope.engine
        tokens = {role: auth_store.create_token(engine, role, role, "test")[1] for role in ROLES}
        yield app, client, tokens


def test_every_route_and_method_is_in_the_permission_table(console) -> None:
    app, _, _ = console
    missing = [
        (path, method)
        for path, method in declared_routes(app)
        if path not in PERMISSIONS or method not in PERMISSIONS[path].roles
    ]
    assert missing == []


def test_each_role_is_allowed_exactly_what_the_table_says(console) -> None:
    app, client, tokens = console
    failures = []
    for path, method in declared_routes(app):
        required = PERMISSIONS[path].roles[method]
        if path == "/events/tail":
            continue  # a stream that never ends; its permission is checked in the table test
        url = concrete(path) if path != "/static" else "/static/css/eventscope.css"
        for role in (None, *ROLES):
            headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
            response = client.request(method, url, headers=headers, follow_redirects=False)
            location = response.headers.get("location", "")
            denied = response.status_code == 403 or (
                required != PUBLIC
                and (response.status_code == 401 or location.startswith("/login?next="))
            )
            should_pass = required == PUBLIC or (role is not None and allows(role, required))
            if should_pass == denied:
                failures.append((method, path, role, response.status_code))
    assert failures == [], "\n".join(map(str, failures))


def test_security_headers_are_on_every_answer(console) -> None:
    _, client, _ = console
    for url in ("/healthz", "/login", "/nope"):
        response = client.get(url)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


def test_session_login_and_csrf(console) -> None:
    app, client, _tokens = console
    engine = app.state.eventscope.engine
    auth_store.create_user(engine, "erin", "erin's long password", "admin")
    anonymous = client.get("/clusters", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    bad = client.post("/login", data={"username": "erin", "password": "nope nope nope"})
    assert bad.status_code == 401
    good = client.post(
        "/login", data={"username": "erin", "password": "erin's long password", "next": "/admin"},
        follow_redirects=False,
    )  # fmt: skip
    assert good.status_code == 303 and good.headers["location"] == "/admin"
    cookie = good.cookies.get("eventscope_session") or client.cookies.get("eventscope_session")
    assert cookie
    set_cookie = good.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    page = client.get("/admin")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    refused = client.post("/admin/users", data={"username": "x", "password": "long enough!!"})
    assert refused.status_code == 403
    cross_site = client.post(
        "/admin/users",
        data={"username": "x", "password": "long enough!!", "csrf_token": csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert cross_site.status_code == 403
    accepted = client.post(
        "/admin/users",
        data={
            "username": "frank",
            "password": "long enough!!",
            "role": "viewer",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert any(u["username"] == "frank" for u in auth_store.list_users(engine))
    client.post("/logout", data={"csrf_token": csrf})
    assert client.get("/clusters", follow_redirects=False).status_code == 303


def test_login_redirect_never_leaves_the_site(console) -> None:
    app, client, _ = console
    auth_store.create_user(app.state.eventscope.engine, "gina", "gina's long password", "viewer")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post(
            "/login",
            data={"username": "gina", "password": "gina's long password", "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"
