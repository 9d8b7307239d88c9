"""The OTLP/HTTP receiver on its own port (`server.otlp_port`): same handler, same rule."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from collectors.config import ConfigError, Settings, load_settings, settings_from_mapping
from collectors.index.engine import create_index_engine
from collectors.index.trace_models import spans_table
from console.app import create_app
from console.composition import background_services
from console.otlp_listener import OtlpListener, OtlpListenerError
from console.settings import area_settings
from console.state import AppState
from console.stores import auth as auth_store
from console.templating import make_templates
from tests.conftest import free_port, make_settings, serve_in_thread
from tests.console.views.test_otlp import json_export, json_span


@dataclass
class Running:
    console: str
    otlp: str
    engine: Engine


@contextmanager
def running(url: str, engine: Engine, mode: str = "all", **server: object) -> Iterator[Running]:
    """The app served in a thread, with its OTLP listener on a free port."""
    otlp_port = free_port()
    settings = make_settings(None, url, server={"auth": "off", **server, "otlp_port": otlp_port})
    app = create_app(settings, mode=mode, engine=engine)
    with serve_in_thread(app) as console:
        yield Running(console, f"http://127.0.0.1:{otlp_port}", engine)


def sdk_spans() -> tuple[str, Sequence[ReadableSpan]]:
    """A producer span and its child, as the SDK hands them to an exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders-service"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("orders")
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": "orders",
        "messaging.destination.partition.id": "1",
        "messaging.kafka.offset": 7,
    }
    with tracer.start_as_current_span("place order") as root:
        tracer.start_span("send orders", kind=SpanKind.PRODUCER, attributes=attributes).end()
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x"), memory.get_finished_spans()


def export(url: str, spans: Sequence[ReadableSpan], token: str | None = None) -> SpanExportResult:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, timeout=5)
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def span_count(engine: Engine, trace_id: str) -> int:
    with engine.connect() as connection:
        query = select(func.count()).where(spans_table.c.trace_id == trace_id)
        return connection.execute(query).scalar_one()


# --------------------------------------------------------------------------- end to end


def test_sdk_exporter_spans_reach_the_index_through_the_otlp_port(index_db) -> None:
    with running(index_db.url, index_db.engine, mode="all") as app:
        trace_id, spans = sdk_spans()
        assert export(app.otlp, spans) == SpanExportResult.SUCCESS
        assert span_count(index_db.engine, trace_id) == 2
        answer = httpx.get(f"{app.console}/api/trace/{trace_id}")
    assert answer.status_code == 200
    assert answer.json()["span_count"] == 2
    services = {group["service"] for group in answer.json()["services"]}
    assert "orders-service" in services


@pytest.fixture(scope="module")
def open_listener(tmp_path_factory) -> Iterator[Running]:
    """Auth off, collect mode: the collectors' half also receives on the OTLP port."""
    path = tmp_path_factory.mktemp("otlp-open") / "index.db"
    engine = create_index_engine(f"sqlite:///{path}")
    with running(f"sqlite:///{path}", engine, mode="collect") as app:
        yield app
    engine.dispose()


def test_json_body_is_accepted_and_answered_in_json(open_listener) -> None:
    body = json_export(json_span("eee19b7ec3c1b174", traceId="7" * 32))
    response = httpx.post(f"{open_listener.otlp}/v1/traces", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"partialSuccess": {}}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert span_count(open_listener.engine, "7" * 32) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not json", "application/json", 400),
        (b"\xff\x00garbage", "application/x-protobuf", 400),
        (b"{}", "text/plain", 415),
    ],
)
def test_garbage_is_a_client_error(open_listener, body, content_type, status) -> None:
    response = httpx.post(
        f"{open_listener.otlp}/v1/traces", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == status


def test_only_the_receiver_is_served(open_listener) -> None:
    about = httpx.get(f"{open_listener.otlp}/")
    assert about.status_code == 200
    assert "POST /v1/traces" in about.text
    assert about.headers["content-type"].startswith("text/plain")
    for path in ("/healthz", "/api/events", "/events", "/v1/metrics", "/v1/traces/x"):
        assert httpx.get(f"{open_listener.otlp}{path}").status_code == 404, path
    assert httpx.post(f"{open_listener.otlp}/v1/logs", json={}).status_code == 404
    wrong_method = httpx.get(f"{open_listener.otlp}/v1/traces")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


# --------------------------------------------------------------------------- access control


@pytest.fixture(scope="module")
def guarded_listener(tmp_path_factory) -> Iterator[tuple[Running, dict[str, str]]]:
    path = tmp_path_factory.mktemp("otlp-auth") / "index.db"
    engine = create_index_engine(f"sqlite:///{path}")
    with running(f"sqlite:///{path}", engine, mode="all", auth="on") as app:
        roles = ("viewer", "operator", "admin")
        tokens = {
            role: auth_store.create_token(engine, f"otlp-{role}", role, "test")[1] for role in roles
        }
        yield app, tokens
    engine.dispose()


def test_with_auth_on_a_token_is_required(guarded_listener) -> None:
    app, tokens = guarded_listener
    body = json_export(json_span("eee19b7ec3c1b174", traceId="8" * 32))
    url = f"{app.otlp}/v1/traces"
    anonymous = httpx.post(url, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=body, headers={"authorization": "Bearer esk_nope"})
    assert wrong.status_code == 401
    viewer = httpx.post(url, json=body, headers={"authorization": f"Bearer {tokens['viewer']}"})
    assert viewer.status_code == 403
    assert span_count(app.engine, "8" * 32) == 0
    assert httpx.get(f"{app.otlp}/").status_code == 200  # says what it is, nothing more


def test_with_auth_on_operator_and_admin_tokens_export(guarded_listener) -> None:
    app, tokens = guarded_listener
    trace_id, spans = sdk_spans()
    assert export(app.otlp, spans) == SpanExportResult.FAILURE
    assert span_count(app.engine, trace_id) == 0
    assert export(app.otlp, spans, tokens["operator"]) == SpanExportResult.SUCCESS
    assert span_count(app.engine, trace_id) == 2
    assert export(app.otlp, spans, tokens["admin"]) == SpanExportResult.SUCCESS


# --------------------------------------------------------------------------- the service


def app_state(tmp_path: Path, otlp_port: int, mode: str = "all") -> AppState:
    settings = make_settings(None, f"sqlite:///{tmp_path / 'index.db'}",
                             server={"auth": "off", "otlp_port": otlp_port})  # fmt: skip
    engine = create_index_engine(settings.index.url)
    return AppState(settings=settings, areas=area_settings(settings), engine=engine,
                    templates=make_templates(), mode=mode)  # fmt: skip


async def test_the_service_starts_in_this_event_loop_and_frees_the_port(tmp_path) -> None:
    port = free_port()
    listener = OtlpListener(app_state(tmp_path, port))
    await listener.start()
    try:
        async with httpx.AsyncClient() as client:
            about = await client.get(f"http://127.0.0.1:{port}/")
        assert about.status_code == 200
    finally:
        await listener.stop()
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again


async def test_a_busy_port_is_one_clear_error(tmp_path, caplog) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        listener = OtlpListener(app_state(tmp_path, port))
        expected = f"cannot listen .*127.0.0.1:{port}"
        with (
            caplog.at_level(logging.ERROR, logger="eventscope.otlp"),
            pytest.raises(OtlpListenerError, match=expected),
        ):
            await listener.start()
        (record,) = [r for r in caplog.records if r.name == "eventscope.otlp"]
        assert "in use" in record.getMessage()
        assert "server.otlp_port" in record.getMessage()
        assert record.exc_info is None
        await listener.stop()  # nothing was started: a no-op


def test_a_busy_port_fails_the_start_of_the_whole_app(tmp_path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        state = app_state(tmp_path, busy.getsockname()[1])
        app = create_app(state.settings, mode="collect", engine=state.engine)
        with pytest.raises(OtlpListenerError), TestClient(app):
            pass


def test_the_listener_runs_with_the_collectors_only(tmp_path) -> None:
    def listeners(state: AppState) -> list[object]:
        return [s for s in background_services(state) if isinstance(s, OtlpListener)]

    assert len(listeners(app_state(tmp_path, free_port()))) == 1
    assert listeners(app_state(tmp_path, 0)) == []
    port = free_port()
    state = app_state(tmp_path, port, mode="console")
    console = create_app(state.settings, mode="console", engine=state.engine)
    with TestClient(console), socket.create_server(("127.0.0.1", port)):
        pass  # nobody listens there in console mode


# --------------------------------------------------------------------------- configuration


def load(tmp_path: Path, toml: str = "", **environ: str) -> Settings:
    config = tmp_path / "eventscope.toml"
    config.write_text(toml)
    return load_settings(config, environ)


def test_defaults_and_environment(tmp_path) -> None:
    settings = load(tmp_path)
    assert (settings.server.otlp_port, settings.server.otlp_host) == (0, None)
    settings = load(tmp_path, EVENTSCOPE_OTLP_PORT="4318", EVENTSCOPE_HOST="::1")
    assert settings.server.otlp_port == 4318
    assert settings.server.otlp_bind_host == "::1"  # follows server.host unless set
    settings = load(tmp_path, '[server]\notlp_port = 4318\notlp_host = "0.0.0.0"\n')
    assert settings.server.otlp_bind_host == "0.0.0.0"
    assert (
        load(tmp_path, "[server]\notlp_port = 4318\n", EVENTSCOPE_OTLP_PORT="0").server.otlp_port
        == 0
    )


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"otlp_port": -1}, "must be 1-65535, or 0"),
        ({"otlp_port": 65536}, "must be 1-65535, or 0"),
        ({"otlp_port": "4318"}, "must be an integer"),
        ({"otlp_port": True}, "must be an integer"),
        ({"otlp_port": 8600}, "must differ from server.port"),
        ({"otlp_host": 4318}, "must be a string"),
    ],
)
def test_bad_values_name_the_key(server, message) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        settings_from_mapping({"server": server})
    assert raised.value.key == f"server.{next(iter(server))}"


@pytest.mark.parametrize("value", ["http", "-1", "70000", ""])
def test_a_bad_environment_variable_is_named(tmp_path, value) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, EVENTSCOPE_OTLP_PORT=value)
    assert raised.value.key == "EVENTSCOPE_OTLP_PORT"


def test_auth_off_is_refused_on_a_public_otlp_host(tmp_path) -> None:
    public = '[server]\nauth = "off"\notlp_port = 4318\notlp_host = "0.0.0.0"\n'
    with pytest.raises(ConfigError, match="must be loopback") as raised:
        load(tmp_path, public)
    assert raised.value.key == "server.otlp_host"
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, '[server]\notlp_port = 4318\notlp_host = "0.0.0.0"\n', EVENTSCOPE_AUTH="off")
    assert raised.value.key == "server.otlp_host"
    # allowed: auth on; loopback; no listener at all
    load(tmp_path, '[server]\notlp_port = 4318\notlp_host = "0.0.0.0"\n')
    load(tmp_path, '[server]\nauth = "off"\notlp_port = 4318\notlp_host = "localhost"\n')
    load(tmp_path, '[server]\nauth = "off"\notlp_host = "0.0.0.0"\n')
