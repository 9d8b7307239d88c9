"""Shared fixtures: one real Kafka broker and one real PostgreSQL per test session.

- Kafka: started through the project's own `eventscope kafka start` unless
  EVENTSCOPE_TEST_KAFKA names a running broker (host:port).
- Schema registry: `eventscope registry start` (Apicurio) unless EVENTSCOPE_TEST_REGISTRY
  names one; started only by the tests that ask for it.
- Kafka Connect: `eventscope connect start` unless EVENTSCOPE_TEST_CONNECT names a worker;
  started only by the tests that ask for it.
- PostgreSQL: scripts/postgres.sh starts a throwaway cluster unless EVENTSCOPE_TEST_PG_URL
  names a server; every index test gets a database of its own.
- Chromium: Debian's /usr/bin/chromium driven by Playwright (see tests/browser.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from collectors.config import ClusterConfig, Settings, settings_from_mapping
from collectors.index import migrate
from collectors.index.engine import create_index_engine

ROOT = Path(__file__).resolve().parent.parent


async def wait_until(check: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    """Poll an async check until it returns something truthy; fail with its last answer."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    pytest.fail(f"not reached in {timeout_s}s; last answer: {last!r}")


def free_port(span: int = 1) -> int:
    """A port p such that p .. p+span-1 are free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + span >= 65535:
            continue
        ok = True
        for candidate in range(port, port + span):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", candidate))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free port")


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="eventscope-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- Kafka -------------------------------------------------------------------------------


@contextmanager
def started_by_the_cli(service: str, data_dir: Path, port: int, *start_args: str) -> Iterator[None]:
    """`eventscope <service> start` (kafka, registry, connect) on `port` for as long as the
    block runs; a failed start fails the tests, quoting the service's log."""
    command = [sys.executable, "-m", "console.cli", service]
    args = ["--port", str(port), "--data-dir", str(data_dir)]
    result = subprocess.run(
        [*command, "start", *args, *start_args], capture_output=True, text=True, cwd=ROOT,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        log = data_dir / f"{service}.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        pytest.fail(f"could not start {service}:\n{result.stdout}\n{result.stderr}\n{tail}")
    try:
        yield
    finally:
        subprocess.run([*command, "stop", *args], cwd=ROOT, check=False, capture_output=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(session_dir: Path) -> Iterator[str]:
    external = os.environ.get("EVENTSCOPE_TEST_KAFKA")
    if external:
        yield external
        return
    port = free_port(span=2)
    with started_by_the_cli("kafka", session_dir / "kafka", port):
        yield f"127.0.0.1:{port}"


# --- the schema registry ---------------------------------------------------------------


@pytest.fixture(scope="session")
def schema_registry_url(session_dir: Path) -> Iterator[str]:
    """A real registry (Apicurio, Confluent-compatible API) for the session: started through
    `eventscope registry start` unless EVENTSCOPE_TEST_REGISTRY names one (its ccompat URL)."""
    external = os.environ.get("EVENTSCOPE_TEST_REGISTRY")
    if external:
        yield external
        return
    port = free_port(span=2)
    with started_by_the_cli("registry", session_dir / "registry", port):
        yield f"http://127.0.0.1:{port}/apis/ccompat/v7"


@pytest.fixture(scope="session")
def connect_url(session_dir: Path, kafka_bootstrap: str) -> Iterator[str]:
    """A real Kafka Connect worker (distributed mode, the file connectors) on the session's
    broker: `eventscope connect start` unless EVENTSCOPE_TEST_CONNECT names one."""
    external = os.environ.get("EVENTSCOPE_TEST_CONNECT")
    if external:
        yield external
        return
    port = free_port()
    with started_by_the_cli("connect", session_dir / "connect", port,
                            "--bootstrap", kafka_bootstrap):  # fmt: skip
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_cluster(kafka_bootstrap: str) -> ClusterConfig:
    return ClusterConfig(name="local", bootstrap=kafka_bootstrap)


# --- figures the tests measure ----------------------------------------------------------------

FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Say what a test measured (a fault's time to visible, recovery's time to caught up):
    the lines are printed together at the end of the run, where CI's log keeps them."""
    found = request.config.stash.setdefault(FIGURES, [])

    def report(text: str) -> None:
        found.append(f"{request.node.name}: {text.strip()}")

    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    found = config.stash.get(FIGURES, [])
    if found:
        terminalreporter.section("figures the tests measured")
        for line in found:
            terminalreporter.write_line(line)


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


# --- PostgreSQL and the index --------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url(session_dir: Path) -> Iterator[str]:
    external = os.environ.get("EVENTSCOPE_TEST_PG_URL")
    if external:
        yield external
        return
    script = ROOT / "scripts" / "postgres.sh"
    data_dir = session_dir / "postgres"
    port = free_port()
    result = subprocess.run(
        ["bash", str(script), "start", str(data_dir), str(port)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: {result.stderr}")
    try:
        yield result.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(script), "stop", str(data_dir)], check=False)


@dataclass
class IndexDatabase:
    url: str
    engine: Engine
    backend: str


def fresh_postgres_database(server_url: str) -> tuple[str, str]:
    name = f"es_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, name


def _drop_postgres_database(server_url: str, name: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexDatabase]:
    """An empty, migrated index on each backend (the test runs once per backend)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.db'}"
        engine = create_index_engine(url)
        migrate.upgrade(engine)
        yield IndexDatabase(url, engine, "sqlite")
        engine.dispose()
        return
    server_url = request.getfixturevalue("postgres_url")
    url, name = fresh_postgres_database(server_url)
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    try:
        yield IndexDatabase(url, engine, "postgresql")
    finally:
        engine.dispose()
        _drop_postgres_database(server_url, name)


def make_settings(cluster: ClusterConfig | None, index_url: str, **sections: dict) -> Settings:
    """Test settings; access control is off unless a test turns it on (server={"auth": "on"})."""
    raw: dict = {"index": {"url": index_url}, "server": {"auth": "off"}, **sections}
    if cluster is not None:
        raw["clusters"] = {
            cluster.name: {"bootstrap": cluster.bootstrap},
        }
    return settings_from_mapping(raw)


# --- a live console for the browser ---------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: Settings
    engine: Engine


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process owns the signals
        pass


@contextmanager
def serve_in_thread(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Run an ASGI app with uvicorn in a thread on a free port; yield its base URL."""
    port = free_port()
    server = _ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the console did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def role_tokens(engine: Engine) -> dict[str, str]:
    """A fresh API token for each role, by role name."""
    from console.stores import auth as auth_store

    return {
        role: auth_store.create_token(engine, f"{role}-token", role, "test")[1]
        for role in ("viewer", "operator", "admin")
    }


@pytest.fixture(scope="session")
def live_server(kafka_cluster: ClusterConfig, session_dir: Path) -> Iterator[LiveServer]:
    from console.app import create_app

    settings = make_settings(
        kafka_cluster,
        f"sqlite:///{session_dir / 'live.db'}",
        # Its own group, so that test sessions sharing a broker never split partitions.
        collector={"group_id": f"eventscope-live-{uuid.uuid4().hex[:8]}"},
    )
    engine = create_index_engine(settings.index.url)
    app = create_app(settings, mode="all", engine=engine)
    with serve_in_thread(app) as url:
        yield LiveServer(url, settings, engine)


# --- the browser -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser():  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield instance
        await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser):  # type: ignore[no-untyped-def]
    from tests.browser import watch_for_errors

    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.problems = watch_for_errors(page)
    yield page
    await context.close()
