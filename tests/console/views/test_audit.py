"""The audit log: what gets written (web, API and CLI), the /audit page and /api/audit with
their filters and cursor pages, and that nothing ever changes or deletes a row."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from starlette.routing import Route
from starlette.testclient import TestClient

from collectors.index.audit_models import audit_table
from collectors.index.engine import create_index_engine
from collectors.index.retention import RetentionPolicy, run_once
from console.app import create_app
from console.stores import audit as audit_store
from console.stores import auth as auth_store
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def fresh_login_throttle():  # type: ignore[no-untyped-def]
    from console.views.auth import throttle

    throttle._failures.clear()


@pytest.fixture
def console(tmp_path):  # type: ignore[no-untyped-def]
    settings = make_settings(None, f"sqlite:///{tmp_path / 'index.db'}", server={"auth": "on"})
    app = create_app(settings, mode="console")
    with TestClient(app, base_url="http://testserver") as client:
        engine = app.state.eventscope.engine
        _, token = auth_store.create_token(engine, "auditor", "admin", "test")
        client.headers["Authorization"] = f"Bearer {token}"
        yield app, client, engine


def entries(client: TestClient, **params: str) -> list[dict]:
    answer = client.get("/api/audit", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["entries"]


def test_logins_user_and_token_changes_are_audited_with_who_and_where(console) -> None:  # type: ignore[no-untyped-def]
    _, client, engine = console
    admin = client.headers.pop("Authorization")
    auth_store.create_user(engine, "olga", PASSWORD, "admin")
    assert (
        client.post("/login", data={"username": "olga", "password": "wrong one!"}).status_code
        == 401
    )
    client.post("/login", data={"username": "olga", "password": PASSWORD})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/admin").text).group(1)  # type: ignore[union-attr]
    client.post("/logout", data={"csrf_token": csrf})
    client.headers["Authorization"] = admin
    client.post(
        "/api/admin/users", json={"username": "pat", "password": PASSWORD, "role": "viewer"}
    )
    client.patch("/api/admin/users/pat", json={"role": "operator"})
    client.patch("/api/admin/users/pat", json={"disabled": True})
    client.patch("/api/admin/users/pat", json={"disabled": False, "password": "another long one"})
    token_id = client.post("/api/admin/tokens", json={"name": "ci", "role": "viewer"}).json()["id"]
    client.delete(f"/api/admin/tokens/{token_id}")
    rows = list(reversed(entries(client)))  # oldest first, to read in order
    seen = [(row["actor"], row["action"], row["target"]) for row in rows]
    assert seen == [
        ("anonymous", "auth.login_failed", "olga"),
        ("olga", "auth.login", "olga"),
        ("olga", "auth.logout", "olga"),
        ("token:auditor", "user.create", "pat"),
        ("token:auditor", "user.role", "pat"),
        ("token:auditor", "user.disable", "pat"),
        ("token:auditor", "user.enable", "pat"),
        ("token:auditor", "user.password", "pat"),
        ("token:auditor", "token.create", str(token_id)),
        ("token:auditor", "token.revoke", str(token_id)),
    ]
    assert all(row["remote"] == "testclient" for row in rows)
    assert rows[4]["detail"] == {"role": "operator"}
    assert "another long one" not in client.get("/api/audit").text


def test_filters_newest_first_and_cursor_pages(console) -> None:  # type: ignore[no-untyped-def]
    _, client, engine = console
    for n in range(7):
        audit_store.record(
            engine, "ann" if n % 2 else "bob", f"user.test{n}", f"thing {n}", {"n": n}, "10.0.0.1"
        )
        time.sleep(0.002)
    all_rows = entries(client, q="thing")
    assert [row["target"] for row in all_rows] == [f"thing {n}" for n in reversed(range(7))]
    assert [row["target"] for row in entries(client, actor="ANN")] == [
        "thing 5",
        "thing 3",
        "thing 1",
    ]
    assert len(entries(client, action="user")) == 7
    assert [row["target"] for row in entries(client, action="user.test4")] == ["thing 4"]
    assert entries(client, action="token") == []
    middle = all_rows[3]["at_ms"]
    assert {row["target"] for row in entries(client, since=str(middle), q="thing")} == {
        "thing 3", "thing 4", "thing 5", "thing 6",
    }  # fmt: skip
    assert len(entries(client, until=str(middle), q="thing")) == 4
    pages, cursor = [], None
    while True:
        params = {"q": "thing", "limit": "3", **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/audit", params=params).json()
        pages.append([row["target"] for row in body["entries"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [target for page in pages for target in page] == [row["target"] for row in all_rows]
    assert entries(client, q="%") == [] and entries(client, q="_") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "0"}, "limit"), ({"since": "yesterday"}, "since"), ({"cursor": "nope"}, "cursor"),
     ({"since": "2000", "until": "1000"}, "until"), ({"q": "x" * 300}, "q")],
)  # fmt: skip
def test_bad_filters_are_400_naming_the_field(console, params, field) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = console
    answer = client.get("/api/audit", params=params)
    assert answer.status_code == 400 and answer.json()["field"] == field
    page = client.get("/audit", params=params)
    assert page.status_code == 200 and field in page.text


def test_only_admins_read_it_and_no_route_changes_it(console) -> None:  # type: ignore[no-untyped-def]
    app, client, engine = console
    _, viewer = auth_store.create_token(engine, "v", "viewer", "test")
    _, operator = auth_store.create_token(engine, "o", "operator", "test")
    for token in (viewer, operator):
        answer = client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403
    for route in app.routes:
        if isinstance(route, Route) and "audit" in route.path:
            assert route.methods is not None and route.methods <= {"GET", "HEAD"}


def test_retention_never_deletes_audit_rows(console) -> None:  # type: ignore[no-untyped-def]
    _, _, engine = console
    audit_store.record(engine, "ann", "user.test", "old", {}, "local")
    with engine.begin() as connection:
        connection.execute(audit_table.update().values(at_ms=1))  # very old (test only)
    run_once(engine, RetentionPolicy(max_age_s=1, max_bytes=1))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(audit_table)).scalar_one() >= 1


def test_cli_user_and_token_commands_are_audited(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PATH": "/usr/bin:/bin", "EVENTSCOPE_INDEX_URL": url, "PYTHONPATH": str(ROOT),
           "HOME": str(tmp_path), "USER": "ops", "LOGNAME": "ops"}  # fmt: skip

    def run(*args: str, stdin: str = "") -> None:
        result = subprocess.run(
            [sys.executable, "-m", "console.cli", *args], input=stdin, capture_output=True,
            text=True, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    run("users", "add", "quinn", "--role", "viewer", stdin=PASSWORD + "\n")
    run("users", "set-role", "quinn", "operator")
    run("users", "disable", "quinn")
    run("users", "passwd", "quinn", stdin="yet another long password\n")
    run("tokens", "create", "--role", "viewer", "--name", "robot")
    run("tokens", "revoke", "1")
    engine = create_index_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(audit_table.c.actor, audit_table.c.action, audit_table.c.target,
                   audit_table.c.remote).order_by(audit_table.c.id)
        ).all()  # fmt: skip
    engine.dispose()
    assert [(r.action, r.target) for r in rows] == [
        ("user.create", "quinn"), ("user.role", "quinn"), ("user.disable", "quinn"),
        ("user.password", "quinn"), ("token.create", "1"), ("token.revoke", "1"),
    ]  # fmt: skip
    assert {r.actor for r in rows} == {"cli:ops"} and {r.remote for r in rows} == {"local"}


@pytest.mark.browser
async def test_filter_the_audit_page_and_page_back(live_server, page) -> None:  # type: ignore[no-untyped-def]
    marker = f"browser-{time.time_ns()}"
    for n in range(3):
        audit_store.record(
            live_server.engine, marker, "alerts.rule.save", f"rule {n}", {"n": n}, "1.2.3.4"
        )
    await page.goto(f"{live_server.url}/audit?limit=2")
    await page.fill("input[name=actor]", marker)
    await page.select_option("select[name=action]", "alerts")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(f"**actor={marker}**")
    rows = page.locator("#audit tbody tr")
    assert await rows.count() == 2
    assert await rows.first.locator(".audit-target").inner_text() == "rule 2"
    await page.locator("#audit-older").click()
    await page.locator("#audit tbody tr .audit-target", has_text="rule 0").wait_for()
    assert await rows.count() == 1
    assert "1.2.3.4" in await rows.first.inner_text()
    api = httpx.get(f"{live_server.url}/api/audit", params={"actor": marker}).json()
    assert len(api["entries"]) == 3
    assert page.problems == []
