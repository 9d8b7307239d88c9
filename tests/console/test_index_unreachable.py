"""An index that stops answering (here: PostgreSQL refusing connections to its database) is
a 503 that says so, on pages and in the API, never a 500; the console recovers by itself."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import create_engine, text

from console.app import create_app
from tests.conftest import (
    _drop_postgres_database,
    fresh_postgres_database,
    make_settings,
    serve_in_thread,
)


def allow_connections(server_url: str, name: str, allowed: bool) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        )
        if not allowed:  # and cut the console's open connections
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
    admin.dispose()


def test_pages_and_api_answer_503_while_the_index_is_unreachable(postgres_url: str) -> None:
    url, name = fresh_postgres_database(postgres_url)
    app = create_app(make_settings(None, url), mode="console")
    try:
        with serve_in_thread(app) as console:
            assert httpx.get(f"{console}/groups", timeout=10).status_code == 200
            allow_connections(postgres_url, name, False)
            try:
                page = httpx.get(f"{console}/groups", timeout=10)
                assert page.status_code == 503, page.text
                assert page.headers["content-type"].startswith("text/html")
                assert "The index cannot be reached right now" in page.text
                assert page.headers["retry-after"] == "5"
                api = httpx.get(f"{console}/api/events", timeout=10)
                assert api.status_code == 503
                assert api.json()["error"].startswith("The index cannot be reached right now")
                assert "SELECT" not in api.json()["error"]  # the reason, not the query
            finally:
                allow_connections(postgres_url, name, True)
            deadline = time.monotonic() + 10
            while httpx.get(f"{console}/api/events", timeout=10).status_code != 200:
                assert time.monotonic() < deadline, "the console did not recover"
                time.sleep(0.2)
    finally:
        app.state.eventscope.engine.dispose()
        _drop_postgres_database(postgres_url, name)
