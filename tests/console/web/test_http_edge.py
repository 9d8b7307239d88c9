"""The HTTP edge against a real server (uvicorn with the console's limits, on loopback):
bad bodies, unknown parameters, too many searches, slow clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, text

from collectors.index.engine import create_index_engine, statement_deadline
from console.app import create_app
from console.http_server import server_config
from console.state import AppState
from console.stores import events as event_store
from tests.collectors.index.test_engine import ENDLESS
from tests.conftest import free_port, make_settings, role_tokens


@dataclass
class Edge:
    url: str
    port: int
    state: AppState
    engine: Engine
    tokens: dict[str, str]

    def auth(self, role: str = "viewer") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process owns the signals
        pass


@contextmanager
def console_server(tmp_path: Path, **server: object) -> Iterator[Edge]:
    """The console (auth on) served the way `eventscope console` serves it, in a thread."""
    settings = make_settings(
        None, f"sqlite:///{tmp_path / 'index.db'}", server={"auth": "on", **server}
    )
    engine = create_index_engine(settings.index.url)
    app = create_app(settings, mode="console", engine=engine)
    port = free_port()
    config = server_config(app, settings.server, "127.0.0.1", port, log_level="warning")
    running = _ThreadedServer(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console did not start"
        time.sleep(0.02)
    try:
        state = app.state.eventscope
        yield Edge(f"http://127.0.0.1:{port}", port, state, engine, role_tokens(engine))
    finally:
        running.should_exit = True
        thread.join(timeout=30)
        engine.dispose()


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    with console_server(tmp_path) as served:
        yield served


def hold_searches(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Semaphore, threading.Event]:
    """Event searches that start (released once each into the semaphore), then wait for
    the event before they run."""
    running, release = threading.Semaphore(0), threading.Event()
    real_search = event_store.search_events

    def held_search(*args, **kwargs):  # type: ignore[no-untyped-def]
        running.release()
        release.wait(10)
        return real_search(*args, **kwargs)

    monkeypatch.setattr(event_store, "search_events", held_search)
    return running, release


def test_too_many_searches_at_once_answer_429_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, release = hold_searches(monkeypatch)
    with console_server(tmp_path, search_concurrency=1, search_queue=0) as served:
        url, headers = f"{served.url}/api/events", served.auth()
        held = threading.Thread(target=lambda: httpx.get(url, headers=headers, timeout=10))
        held.start()
        assert running.acquire(timeout=10)
        refused = httpx.get(url, params={"text": "x"}, headers=headers, timeout=10)
        page = httpx.get(f"{served.url}/events", headers=headers, timeout=10)
        health = httpx.get(f"{served.url}/healthz", timeout=10)
        static = httpx.get(f"{served.url}/static/css/eventscope.css", timeout=10)
        release.set()
        held.join(10)
        assert refused.status_code == 429 and page.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "too many event searches" in refused.json()["error"]
        assert health.status_code == static.status_code == 200  # never behind searches
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200


def test_a_search_past_its_timeout_answers_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def endless_search(engine, f, *, timeout_s):  # type: ignore[no-untyped-def]
        with engine.connect() as connection, statement_deadline(connection, timeout_s):
            connection.execute(text(ENDLESS)).all()

    monkeypatch.setattr(event_store, "search_events", endless_search)
    with console_server(tmp_path, search_timeout_s=0.2) as served:
        answer = httpx.get(f"{served.url}/api/events", headers=served.auth(), timeout=10)
    assert answer.status_code == 503
    assert "longer than 0.2 s" in answer.json()["error"]
    assert int(answer.headers["retry-after"]) > 0


def test_deeply_nested_json_is_a_400(edge: Edge) -> None:
    for path in ("/api/actions", "/api/alerts/silences", "/api/alerts/rules/preview"):
        for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
            answer = httpx.post(
                edge.url + path, content=body, timeout=10,
                headers={**edge.auth("admin"), "content-type": "application/json"},
            )  # fmt: skip
            assert answer.status_code == 400, (path, answer.status_code)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_an_oversized_streamed_body_is_413_before_it_sits_in_memory(edge: Edge) -> None:
    """200 MB streamed without a length: refused after the first megabyte, and the server
    (this process) does not grow by the body."""
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"kind": "replay", "note": "'
        for _ in range(200):
            sent += 1
            yield b"a" * (1 << 20)
        yield b'"}'

    before = _rss_mb()
    try:
        answer = httpx.post(
            f"{edge.url}/api/actions", content=chunks(), timeout=30,
            headers={**edge.auth("operator"), "content-type": "application/json"},
        )  # fmt: skip
        assert answer.status_code == 413
    except httpx.TransportError:
        pass  # the server answered 413 and closed while the client still sent
    assert sent < 50  # the server stopped reading long before the end
    assert _rss_mb() - before < 50


def test_unknown_query_parameters_on_the_api_are_a_400_naming_them(edge: Edge) -> None:
    answer = httpx.get(f"{edge.url}/api/events", params={"q": "order"}, headers=edge.auth())
    assert answer.status_code == 400
    assert answer.json()["field"] == "q" and "q" in answer.json()["error"]
    known = httpx.get(f"{edge.url}/api/events", params={"text": "order"}, headers=edge.auth())
    assert known.status_code == 200
    page = httpx.get(f"{edge.url}/events", params={"q": "x", "_": "1"}, headers=edge.auth())
    assert page.status_code == 200  # pages ignore what htmx and old links add


def test_a_connection_that_never_finishes_its_headers_is_closed(tmp_path: Path) -> None:
    with console_server(tmp_path, header_timeout_s=0.5) as served:
        slow = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        slow.sendall(b"X-Still: typing\r\n")
        answer = slow.recv(4096)  # blocks until the server answers and closes
        waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert slow.recv(4096) == b""
        assert 0.3 < waited < 3
        slow.close()
        assert httpx.get(f"{served.url}/healthz").status_code == 200


def test_a_body_that_stops_arriving_is_cut_off_and_a_slow_steady_one_is_not(
    tmp_path: Path,
) -> None:
    with console_server(tmp_path, header_timeout_s=1) as served:
        head = (
            f"POST /api/actions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {served.tokens['operator']}\r\n"
        )
        body = b'{"kind": "no such kind"}'
        steady = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        steady.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
        for piece in (body[:8], body[8:16], body[16:]):  # 0.2 s gaps: under the timeout
            time.sleep(0.2)
            steady.sendall(piece)
        assert steady.recv(4096).startswith(b"HTTP/1.1 400")  # read whole, then judged
        steady.close()

        stalled = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        stalled.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + body[:8])
        started = time.monotonic()
        assert stalled.recv(4096) == b""  # closed by the server
        assert 0.8 < time.monotonic() - started < 4
        stalled.close()


def test_beyond_the_cap_the_quietest_waiting_connection_makes_room(tmp_path: Path) -> None:
    with console_server(tmp_path, max_connections=2) as served:
        quietest = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        quietest.sendall(b"GET /healthz HTTP/1.1\r\n")  # a head that never ends
        idle = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        served_now = httpx.get(f"{served.url}/healthz", timeout=5)
        assert served_now.status_code == 200  # the new client is served at once
        assert quietest.recv(4096).startswith(b"HTTP/1.1 408")
        for connection in (quietest, idle):
            connection.close()


def test_beyond_the_cap_with_every_connection_busy_a_new_one_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, release = hold_searches(monkeypatch)
    with console_server(tmp_path, max_connections=2, search_concurrency=2) as served:
        url, headers = f"{served.url}/api/events", served.auth()
        busy = [
            threading.Thread(target=lambda: httpx.get(url, headers=headers, timeout=10))
            for _ in range(2)
        ]
        for thread in busy:
            thread.start()
        assert running.acquire(timeout=10) and running.acquire(timeout=10)
        extra = socket.create_connection(("127.0.0.1", served.port), timeout=5)
        refused = extra.recv(4096)
        release.set()
        for thread in busy:
            thread.join(10)
        assert refused.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in refused
        extra.close()
