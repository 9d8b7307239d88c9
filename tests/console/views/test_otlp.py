"""POST /v1/traces on the console app: formats, gzip, limits and error answers."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import select
from starlette.testclient import TestClient

from collectors.index.engine import create_index_engine
from collectors.index.trace_models import spans_table
from collectors.otlp_model import MAX_BODY_BYTES
from console.app import create_app
from tests.conftest import make_settings

TRACE = "5b8efff798038103d269b633813fc60c"


def json_export(*spans: dict) -> dict:
    return {
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "checkout"}}]},
            "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
        }]
    }  # fmt: skip


def json_span(span_id: str, **extra) -> dict:
    return {
        "traceId": TRACE, "spanId": span_id, "name": "send orders", "kind": 4,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000005000000",
        "attributes": [
            {"key": "messaging.destination.name", "value": {"stringValue": "orders"}},
            {"key": "messaging.destination.partition.id", "value": {"stringValue": "2"}},
            {"key": "messaging.kafka.offset", "value": {"intValue": "41"}},
        ],
        "status": {"code": 2, "message": "broker said no"},
        **extra,
    }  # fmt: skip


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    engine = create_index_engine(url)
    app = create_app(make_settings(None, url), mode="console", engine=engine)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.engine = engine  # type: ignore[attr-defined]
        yield test_client
    engine.dispose()


def stored(client) -> list[dict]:
    with client.engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(spans_table)).mappings()]


def test_json_export_is_stored_with_service_kind_status_and_coordinates(client) -> None:
    response = client.post("/v1/traces", json=json_export(json_span("eee19b7ec3c1b174")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"partialSuccess": {}}
    (row,) = stored(client)
    assert (row["service_name"], row["kind"], row["status_code"]) == ("checkout", 4, 2)
    assert (row["topic"], row["partition"], row["offset"]) == ("orders", 2, 41)
    assert row["duration_ns"] == 5_000_000
    assert json.loads(row["attributes"])["messaging.kafka.offset"] == 41


def test_protobuf_gzip_export_and_a_protobuf_answer(client) -> None:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "billing"
    proto_span = resource_spans.scope_spans.add().spans.add()
    proto_span.trace_id = bytes.fromhex(TRACE)
    proto_span.span_id = bytes.fromhex("00f067aa0ba902b7")
    proto_span.name, proto_span.kind = "process orders", 5
    proto_span.start_time_unix_nano, proto_span.end_time_unix_nano = 10, 20
    link = proto_span.links.add()
    link.trace_id, link.span_id = bytes.fromhex("1" * 32), bytes.fromhex("2" * 16)
    response = client.post(
        "/v1/traces",
        content=gzip.compress(request.SerializeToString()),
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    (row,) = stored(client)
    assert row["service_name"] == "billing"
    assert json.loads(row["links"])[0]["span_id"] == "2" * 16


def test_malformed_spans_are_a_partial_success(client) -> None:
    body = json_export(json_span("eee19b7ec3c1b174"), json_span("nothex"), {"spanId": 3})
    response = client.post("/v1/traces", json=body)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "invalid span id" in partial["errorMessage"]
    assert len(stored(client)) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not json at all", {"content-type": "application/json"}, 400),
        (b"\xff\x00garbage", {"content-type": "application/x-protobuf"}, 400),
        (b'{"resourceSpans": 5}', {"content-type": "application/json"}, 400),
        (b"\x1f\x8b broken gzip", {"content-type": "application/json",
                                   "content-encoding": "gzip"}, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
    ],
)  # fmt: skip
def test_garbage_is_a_client_error_never_a_500(client, body, headers, status) -> None:
    response = client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    if headers["content-type"] == "application/json":
        assert response.json()["message"]


def test_too_large_bodies_are_413_before_and_after_gzip(client) -> None:
    headers = {"content-type": "application/json"}
    response = client.post("/v1/traces", content=b" " * (MAX_BODY_BYTES + 1), headers=headers)
    assert response.status_code == 413
    bomb = gzip.compress(b" " * (MAX_BODY_BYTES + 10))
    response = client.post(
        "/v1/traces", content=bomb, headers={**headers, "content-encoding": "gzip"}
    )
    assert response.status_code == 413


def test_the_route_needs_no_trailing_slash_and_only_takes_post(client) -> None:
    response = client.post("/v1/traces", json={}, follow_redirects=False)
    assert response.status_code == 200
    assert client.get("/v1/traces").status_code == 405
