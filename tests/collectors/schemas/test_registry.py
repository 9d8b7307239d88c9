"""The registry client against a real registry (Apicurio's Confluent-compatible API), and
how each kind of failure is classified (an HTTP transport that answers as a failing
registry would: the real one cannot be made to refuse credentials)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from collectors.config import SchemaRegistryConfig
from collectors.schemas.registry import RegistryClient, RegistryError
from tests.conftest import free_port
from tests.schema_fixtures import ORDER_AVRO

pytestmark = pytest.mark.kafka  # needs the session's real services


@pytest.fixture
def registry(schema_registry_url: str) -> Iterator[RegistryClient]:
    client = RegistryClient(SchemaRegistryConfig(url=schema_registry_url))
    yield client
    client.close()


def test_register_read_version_and_compatibility(registry: RegistryClient) -> None:
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    # A schema of its own: the registry gives equal texts one id, whatever the subject.
    schema = {**ORDER_AVRO, "doc": subject}
    first = registry.register(subject, json.dumps(schema), "AVRO")
    found = registry.schema_by_id(first)
    assert found.schema_type == "AVRO" and json.loads(found.text)["name"] == "OrderPlaced"
    assert registry.schema_by_id(first) is found  # immutable: asked once
    assert registry.subjects_of(first) == [(subject, 1)]
    assert subject in registry.subjects()
    assert registry.versions(subject) == [1]

    registry.set_compatibility(subject, "BACKWARD")
    assert registry.compatibility_level(subject) == "BACKWARD"
    widened = {**schema, "fields": [*ORDER_AVRO["fields"],
               {"name": "note", "type": ["null", "string"], "default": None}]}  # fmt: skip
    assert registry.check_compatibility(subject, json.dumps(widened), "AVRO").is_compatible
    narrowed = {**schema, "fields": [*ORDER_AVRO["fields"], {"name": "must", "type": "string"}]}
    verdict = registry.check_compatibility(subject, json.dumps(narrowed), "AVRO")
    assert not verdict.is_compatible

    second = registry.register(subject, json.dumps(widened), "AVRO")
    assert registry.version(subject, "latest").schema.id == second
    registry.delete_version(subject, 2)
    assert registry.versions(subject) == [1]
    registry.delete_subject(subject, permanent=True)
    assert subject not in registry.subjects()


def test_missing_things_are_404s_a_retry_may_fix(registry: RegistryClient) -> None:
    with pytest.raises(RegistryError) as missing:
        registry.schema_by_id(987_654)
    assert (missing.value.status, missing.value.retryable) == (404, True)
    with pytest.raises(RegistryError) as no_subject:
        registry.versions(f"nothing-{uuid.uuid4().hex}")
    assert no_subject.value.status == 404


def test_an_invalid_schema_is_rejected_for_good(registry: RegistryClient) -> None:
    subject = f"bad-{uuid.uuid4().hex[:8]}-value"
    with pytest.raises(RegistryError) as rejected:
        registry.register(
            subject, '{"type": "record", "name": "X", "fields": [{"name": "a"}]}', "AVRO"
        )
    assert rejected.value.retryable is False
    assert rejected.value.status in (409, 422)


def test_unreachable_registry_is_retryable() -> None:
    client = RegistryClient(
        SchemaRegistryConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=1)
    )
    with pytest.raises(RegistryError, match="registry unreachable") as down:
        client.schema_by_id(1)
    assert down.value.retryable
    client.close()


def answering(status: int, body: object, headers: dict[str, str] | None = None) -> RegistryClient:
    def handler(request: httpx.Request) -> httpx.Response:
        handler.seen.append(request)  # type: ignore[attr-defined]
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    handler.seen = []  # type: ignore[attr-defined]
    config = SchemaRegistryConfig(url="https://registry.example/apis/ccompat/v7", token="t0k3n")
    client = RegistryClient(config, transport=httpx.MockTransport(handler))
    client.seen = handler.seen  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize(
    ("status", "body", "retryable", "message"),
    [
        (
            401,
            {"error_code": 40101, "message": "Unauthorized"},
            True,
            "refused the credentials (401)",
        ),
        (403, {}, True, "refused the credentials (403)"),
        (
            404,
            {"error_code": 40403, "message": "Schema 17 not found"},
            True,
            "Schema 17 not found (40403)",
        ),
        (
            500,
            {"error_code": 50001, "message": "store down"},
            True,
            "registry error 500: store down",
        ),
        (503, b"<html>maintenance</html>", True, "registry error 503"),
        (
            422,
            {"error_code": 42201, "message": "Invalid schema"},
            False,
            "rejected schema 17 (42201)",
        ),
        (200, b"not json", True, "not JSON"),
        (200, {"no": "schema"}, False, "has no schema text"),
    ],
)
def test_failures_are_classified(status: int, body: object, retryable: bool, message: str) -> None:
    client = answering(status, body)
    with pytest.raises(RegistryError) as failure:
        client.schema_by_id(17)
    assert failure.value.retryable is retryable
    assert message in failure.value.message


def test_bearer_token_is_sent_and_protobuf_type_read() -> None:
    client = answering(
        200,
        {
            "schema": 'syntax = "proto3";',
            "schemaType": "PROTOBUF",
            "references": [{"name": "m.proto", "subject": "m", "version": 2}],
        },
    )
    schema = client.schema_by_id(5)
    assert schema.schema_type == "PROTOBUF"
    assert schema.references[0].version == 2
    assert client.seen[0].headers["authorization"] == "Bearer t0k3n"  # type: ignore[attr-defined]
    assert str(client.seen[0].url) == "https://registry.example/apis/ccompat/v7/schemas/ids/5"  # type: ignore[attr-defined]
