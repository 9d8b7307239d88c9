"""Producing one record by hand: a new one, or an existing one again with edits.

Checked before anything is sent: the topic exists (asking never creates it), the partition
is one of its partitions, and the record fits the topic's `max.message.bytes`. With a
schema, the value is typed as JSON and encoded as the registry's serializers would (Avro
binary, or the JSON as is, framed with the schema's id), after validating it against the
schema. The broker's answer (partition, offset) is returned; its refusals in its words.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastavro
from aiokafka import AIOKafkaProducer
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client, client_options
from collectors.schemas.registry import RegisteredSchema
from collectors.schemas.wire import frame
from console.operations import topics
from console.operations.avro_json import datum_from_json
from console.operations.fields import PlanError, field_text, topic_name

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
MAX_RECORD_BYTES = 8 * 1024 * 1024  # never more, whatever the topic allows
MAX_HEADERS = 100
RECORD_OVERHEAD = 100  # a batch of one record: headers of the batch and of the record


@dataclass(frozen=True)
class ProduceRequest:
    cluster: str
    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None  # None: by key (or spread when there is none)
    compression: str = "none"
    subject: str = ""  # with a registry: encode the value with this subject's schema
    version: str = "latest"

    @property
    def size(self) -> int:
        headers = sum(len(name.encode()) + len(value) for name, value in self.headers)
        return len(self.key or b"") + len(self.value or b"") + headers


class ProducedJson(TypedDict):
    cluster: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    size: int
    schema_id: int | None


def parse_request(raw: Mapping[str, Any], clusters: Sequence[str]) -> ProduceRequest:
    """A form or JSON body as a ProduceRequest. JSON: key/value as text (or `*_base64`),
    value null for a tombstone, headers as [{"name", "value"}]; a form: headers as lines of
    `name: value`. PlanError says what is wrong."""
    cluster = field_text(raw.get("cluster")) or (clusters[0] if len(clusters) == 1 else "")
    if cluster not in clusters:
        raise PlanError(f"cluster: one of {', '.join(clusters)}")
    topic = topic_name(raw.get("topic"))
    key = _bytes(raw, "key", empty_is_none=True)
    value = None if _flag(raw.get("tombstone")) else _bytes(raw, "value", empty_is_none=False)
    partition_text = field_text(raw.get("partition"))
    partition = None
    if partition_text:
        if not partition_text.isdigit() or int(partition_text) >= 2**31:
            raise PlanError("partition: a partition number, or empty to choose by key")
        partition = int(partition_text)
    compression = field_text(raw.get("compression")) or "none"
    if compression not in CODECS:
        raise PlanError(f"compression: one of {', '.join(CODECS)}")
    subject = field_text(raw.get("subject"))
    version = field_text(raw.get("version")) or "latest"
    if version != "latest" and not version.isdigit():
        raise PlanError("version: a version number or latest")
    if subject and value is None:
        raise PlanError("subject: a tombstone has no value to encode")
    request = ProduceRequest(
        cluster, topic, key, value, _headers(raw.get("headers")), partition, compression,
        subject, version,
    )  # fmt: skip
    if request.size > MAX_RECORD_BYTES:
        raise PlanError(f"the record is {request.size:,} bytes; at most {MAX_RECORD_BYTES:,}")
    return request


def _flag(value: Any) -> bool:
    return value is True or value in ("1", "on", "true")


def _bytes(raw: Mapping[str, Any], name: str, *, empty_is_none: bool) -> bytes | None:
    encoded = raw.get(f"{name}_base64")
    if isinstance(encoded, str) and encoded:
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PlanError(f"{name}_base64: not base64") from None
    value = raw.get(name)
    if value is None or (value == "" and empty_is_none):
        return None
    if not isinstance(value, str):
        raise PlanError(f"{name}: text (or {name}_base64 for bytes)")
    return value.encode("utf-8")


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    if raw is None or raw == "":
        return ()
    pairs: list[tuple[str, bytes]] = []
    if isinstance(raw, str):  # a form: one "name: value" per line
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, text = line.partition(":")
            if not colon or not name.strip():
                raise PlanError(f"headers: line {number} is not 'name: value'")
            pairs.append((name.strip(), text.strip().encode("utf-8")))
    elif isinstance(raw, list):
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise PlanError('headers: a list of {"name": ..., "value": ...}')
            pairs.append((item["name"], _bytes(item, "value", empty_is_none=False) or b""))
    else:
        raise PlanError('headers: a list of {"name": ..., "value": ...}')
    if len(pairs) > MAX_HEADERS:
        raise PlanError(f"headers: at most {MAX_HEADERS}")
    if any(not name or len(name) > 1000 for name, _ in pairs):
        raise PlanError("headers: a name of 1 to 1000 characters")
    return tuple(pairs)


def encode_value(value: bytes, schema: RegisteredSchema) -> bytes:
    """The value (JSON text) as the registry's serializers write it: framed with the
    schema's id; Avro in its binary encoding, checked against the schema first."""
    try:
        document = json.loads(value)
    except ValueError as exc:
        raise PlanError(f"value: with a schema, the value is typed as JSON ({exc})") from None
    if schema.schema_type == "AVRO":
        try:
            parsed = fastavro.parse_schema(json.loads(schema.text))
        except Exception as exc:
            raise PlanError(f"schema {schema.id}: not usable here ({exc})") from None
        document = datum_from_json(document, parsed)
        try:
            fastavro.validation.validate(document, parsed, raise_errors=True)
        except Exception as exc:
            raise PlanError(f"value: does not match schema {schema.id}: {exc}") from None
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed, document)
        return frame(schema.id, body.getvalue())
    if schema.schema_type == "JSON":
        return frame(schema.id, json.dumps(document, ensure_ascii=False).encode("utf-8"))
    raise PlanError(f"subject: {schema.schema_type} schemas cannot be written here yet")


async def send(
    cluster: ClusterConfig, request: ProduceRequest, schema: RegisteredSchema | None = None
) -> ProducedJson:
    value = request.value
    if schema is not None and value is not None:
        value = encode_value(value, schema)
    sized = dataclasses.replace(request, value=value)
    async with admin_client(cluster) as admin:
        found = await topics.existing(admin, request.topic)
        count = len(found.get("partitions", []))
        if request.partition is not None and request.partition >= count:
            raise PlanError(f"partition: topic {request.topic} has partitions 0 to {count - 1}")
        limit = await topics.max_message_bytes(admin, request.topic)
    if sized.size + RECORD_OVERHEAD > limit:
        raise PlanError(
            f"the record is {sized.size:,} bytes; topic {request.topic} accepts at most "
            f"{limit:,} (max.message.bytes)"
        )
    options = client_options(cluster)
    options["client_id"] = "eventscope-produce"
    producer = AIOKafkaProducer(
        acks="all", enable_idempotence=True, max_request_size=MAX_RECORD_BYTES * 2,
        compression_type=None if request.compression == "none" else request.compression,
        **options,
    )  # fmt: skip
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            request.topic, value, key=request.key, headers=list(request.headers),
            partition=request.partition,
        )  # fmt: skip
    finally:
        await producer.stop()
    return ProducedJson(
        cluster=cluster.name, topic=request.topic, partition=sent.partition, offset=sent.offset,
        timestamp_ms=sent.timestamp, size=sized.size, schema_id=schema.id if schema else None,
    )  # fmt: skip
