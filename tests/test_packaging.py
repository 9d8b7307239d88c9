"""The wheel as a user installs it, and docker-compose.yml's commands run outside Docker.

The wheel is built and installed (not editable) into a fresh virtual environment, then run
from another folder: pages, static files and the browser libraries must be served from
the installed package, and migrations must run. The compose file's `collect` and `console`
services are started with the same command line and environment as in their containers,
the host names `kafka` and `postgres` pointed at the session's broker and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.conftest import ROOT, free_port, fresh_postgres_database

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh virtual environment with the wheel built from this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = work.glob("eventscope-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    subprocess.run(
        [str(work / "venv" / "bin" / "pip"), "install", "-q", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return work / "venv" / "bin"


def _clean_env(**extra: str) -> dict[str, str]:
    """No EVENTSCOPE_* or PYTHONPATH from the test run: only what the installed one needs."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith("EVENTSCOPE_") and k != "PYTHONPATH"}  # fmt: skip
    return {**keep, **extra}


@contextmanager
def _running(command: list[str], cwd: Path, env: dict[str, str]) -> Iterator[Path]:
    log = cwd / f"{Path(command[0]).name}-{command[1]}.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
    try:
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _until_ready(url: str, log: Path, timeout_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=5)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready in {timeout_s}s:\n{log.read_text()[-3000:]}")


def test_the_installed_wheel_serves_pages_static_files_and_migrates(
    installed: Path, tmp_path: Path, kafka_bootstrap: str
) -> None:
    port = free_port()
    cache = tmp_path / "cache"
    env = _clean_env(
        EVENTSCOPE_KAFKA_BOOTSTRAP=kafka_bootstrap, EVENTSCOPE_AUTH="off",
        EVENTSCOPE_PORT=str(port), EVENTSCOPE_CACHE_DIR=str(cache),
    )  # fmt: skip
    with _running([str(installed / "eventscope"), "serve"], tmp_path, env) as log:
        url = f"http://127.0.0.1:{port}"
        _until_ready(url, log)
        home = httpx.get(url, follow_redirects=True, timeout=20)
        assert home.status_code == 200 and "<h1>Overview" in home.text
        assert httpx.get(f"{url}/events", timeout=20).status_code == 200
        css = httpx.get(f"{url}/static/css/eventscope.css")
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        htmx = httpx.get(f"{url}/static/vendor/htmx.min.js")
        assert htmx.status_code == 200 and len(htmx.content) > 10_000
        assert '<script src="/static/vendor/htmx.min.js"' in home.text
    assert list(cache.glob("vendor/*/htmx.min.js")), "fetched into the cache, not the package"
    status = subprocess.run(
        [str(installed / "eventscope"), "index", "status"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert status.returncode == 0 and '"up_to_date": true' in status.stdout, status.stdout


def _compose_service(name: str) -> tuple[list[str], dict[str, str]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    service = services[name]
    return list(service["command"]), {k: str(v) for k, v in service["environment"].items()}


def test_the_compose_collect_and_console_commands_run_as_in_their_containers(
    installed: Path,
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_url: str,
    schema_registry_url: str,
) -> None:
    database_url, _ = fresh_postgres_database(postgres_url)
    started: list[tuple[str, str]] = []
    with ExitStack() as stack:
        for name in ("collect", "console"):
            command, environment = _compose_service(name)
            assert command[0] == "eventscope"
            port = free_port()
            # The containers' host names, pointed at this session's broker and PostgreSQL.
            assert environment["EVENTSCOPE_KAFKA_BOOTSTRAP"] == "kafka:9092"
            assert make_url(environment["EVENTSCOPE_INDEX_URL"]).host == "postgres"
            assert make_url(environment["EVENTSCOPE_INDEX_URL"]).drivername == (
                make_url(database_url).drivername
            )
            assert environment["EVENTSCOPE_SCHEMA_REGISTRY_URL"].startswith("http://registry:")
            environment |= {
                "EVENTSCOPE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "EVENTSCOPE_SCHEMA_REGISTRY_URL": schema_registry_url,
                "EVENTSCOPE_INDEX_URL": database_url,
                "EVENTSCOPE_PORT": str(port),
            }
            if "EVENTSCOPE_OTLP_PORT" in environment:
                environment["EVENTSCOPE_OTLP_PORT"] = str(free_port())
            env = _clean_env(**environment, EVENTSCOPE_CACHE_DIR=str(tmp_path / "cache"))
            command = [str(installed / command[0]), *command[1:]]
            log = stack.enter_context(_running(command, tmp_path, env))
            url = f"http://127.0.0.1:{port}"
            ready = _until_ready(url, log).json()
            assert ready["ready"] is True, ready
            started.append((name, url))
        console = dict(started)["console"]
        login = httpx.get(f"{console}/login")
        assert login.status_code == 200, "auth is on: the console asks to log in"
        assert httpx.get(f"{console}/events", follow_redirects=False).status_code in (302, 303)
