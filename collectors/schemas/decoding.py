"""Decoding one cluster's records on the way into the index.

The order of detection for a value (and, the same way, a key): a registry frame (magic
byte 0 and a schema id) is decoded with the schema the registry has under that id; else
a schema file configured for the topic is tried; else the caller goes on with JSON, text
and binary (collectors/conventions.py). Each decoded or undecodable record gets a state:

- `decoded`: the document is what the identity conventions, search and pages read;
- `pending`: it may decode later (the registry is down, slow, refuses the credentials,
  does not know the id, or none is configured): the raw bytes are indexed and the
  re-decode pass (collectors/schemas/redecode.py) tries again;
- `failed`: it never will (a malformed frame, bytes that do not fit the schema, an
  unknown Protobuf message index, a schema that does not parse).

The registry is asked once per schema id (compiled decoders are cached, bounded). While
it fails, it is not asked again for a growing pause (1 s, doubling to 60 s), so a dead
registry costs the tap one timeout per pause, not one per record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from collectors.config import ClusterConfig, TopicSchemasConfig
from collectors.schemas.decoders import (
    Decode,
    PayloadError,
    ProtobufSchema,
    SchemaError,
    avro_decoder,
    json_decoder,
    protobuf_files,
)
from collectors.schemas.registry import RegisteredSchema, RegistryClient, RegistryError
from collectors.schemas.schema_files import SchemaFileError, load_schema_file
from collectors.schemas.wire import MAGIC_BYTE, FrameError, read_frame

log = logging.getLogger("eventscope.schemas")

DECODED = "decoded"
PENDING = "pending"
FAILED = "failed"
STATES = (DECODED, PENDING, FAILED)

# content_type of a record by where its schema came from
REGISTRY_CONTENT_TYPES = {
    "AVRO": "avro-confluent",
    "PROTOBUF": "protobuf-confluent",
    "JSON": "json-schema-confluent",
}
UNKNOWN_FRAMED = "schema-registry"  # framed, schema not known yet
FILE_CONTENT_TYPES = {"avro": "avro", "protobuf": "protobuf"}

DECODER_CACHE_SIZE = 2_000
MAX_REFERENCE_DEPTH = 16
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
MISSING_RETRY_S = 60.0  # a schema id the registry did not know is asked for again after this
SUBJECTS_REFRESH_S = 60.0


class Decoded(NamedTuple):
    """What the decoder made of one value or key."""

    content_type: str | None  # None: not ours, classify the bytes as usual
    schema_id: int | None
    document: Any  # the decoded value (when state is "decoded")
    state: str
    note: str | None  # why it is pending or failed


class RecordDecoder:
    """The schemas of one cluster: its registry (optional) and its schema files."""

    def __init__(
        self,
        registry: RegistryClient | None,
        topic_schemas: Mapping[str, TopicSchemasConfig] | None = None,
        *,
        cluster: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.cluster = cluster
        self.topic_schemas = dict(topic_schemas or {})
        self.clock = clock
        self._decoders: dict[int, tuple[str, Decode | SchemaError]] = {}
        self._files: dict[tuple[str, str], Decode | SchemaFileError] = {}
        self._lock = threading.Lock()
        self._resolving = threading.Lock()  # one registry look-up at a time
        self._down_until = 0.0
        self._down_reason = ""
        self._backoff = BACKOFF_MIN_S
        self._missing: dict[int, tuple[float, str]] = {}
        self._subjects: frozenset[str] = frozenset()
        self._subjects_at: float | None = None

    @classmethod
    def for_cluster(cls, cluster: ClusterConfig) -> RecordDecoder:
        registry = RegistryClient(cluster.schema_registry) if cluster.schema_registry else None
        return cls(registry, cluster.topic_schemas, cluster=cluster.name)

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()

    @property
    def registry_down(self) -> str | None:
        """Why the registry is being left alone for now, or None when it answers."""
        return self._down_reason if self.clock() < self._down_until else None

    # --- one record ---------------------------------------------------------------------

    def decode(self, topic: str, part: str, data: bytes) -> Decoded | None:
        """Decode a non-empty value or key (`part` is "value" or "key"); None when it is
        neither framed nor described by a schema file."""
        if data[0] == MAGIC_BYTE:
            # Schema id 0 is no registry's (a big-endian number, say); a short value is a
            # truncated frame only where a registry is expected.
            if len(data) >= 5 and data[1:5] != b"\x00\x00\x00\x00":
                return self._decode_framed(data)
            if len(data) < 5 and self.registry is not None:
                return self._decode_framed(data)
        spec = self.topic_schemas.get(topic)
        if spec is not None and getattr(spec, part) is not None:
            return self._decode_with_file(topic, part, data)
        if self.registry is not None and f"{topic}-{part}" in self._known_subjects():
            note = (
                f"wrong magic byte 0x{data[0]:02x}: subject {topic}-{part} is registered "
                "for this topic, but the record is not in the registry's wire format"
            )
            return Decoded(None, None, None, FAILED, note)
        return None

    def _decode_framed(self, data: bytes) -> Decoded:
        if len(data) < 5:
            try:
                read_frame(data)
            except FrameError as exc:
                return Decoded(UNKNOWN_FRAMED, None, None, FAILED, str(exc))
        schema_id = int.from_bytes(data[1:5], "big")
        found = self._decoders.get(schema_id)  # a dict read is atomic: no lock on this path
        if found is None:
            try:
                found = self._decoder(schema_id)
            except RegistryError as exc:
                note = f"schema {schema_id} unavailable ({exc.message})"
                state = PENDING if exc.retryable else FAILED
                return Decoded(UNKNOWN_FRAMED, schema_id, None, state, note)
        schema_type, decode = found
        content_type = REGISTRY_CONTENT_TYPES.get(schema_type, UNKNOWN_FRAMED)
        if isinstance(decode, SchemaError):
            note = f"schema {schema_id} cannot be used: {decode}"
            return Decoded(content_type, schema_id, None, FAILED, note)
        try:
            document = decode(data, 5)
        except (PayloadError, FrameError) as exc:
            return Decoded(content_type, schema_id, None, FAILED, f"schema {schema_id}: {exc}")
        return Decoded(content_type, schema_id, document, DECODED, None)

    def _decode_with_file(self, topic: str, part: str, data: bytes) -> Decoded:
        spec = getattr(self.topic_schemas[topic], part)
        kind = "avro" if spec.avro is not None else "protobuf"
        decode = self._files.get((topic, part))
        if decode is None:
            try:
                decode = load_schema_file(spec)
            except SchemaFileError as exc:
                decode = exc
            self._files[(topic, part)] = decode
        if isinstance(decode, SchemaFileError):
            return Decoded(None, None, None, FAILED, f"configured {kind} schema: {decode}")
        try:
            document = decode(data, 0)
        except PayloadError as exc:
            return Decoded(None, None, None, FAILED, f"configured {kind} schema: {exc}")
        return Decoded(FILE_CONTENT_TYPES[kind], None, document, DECODED, None)

    # --- schemas by id ------------------------------------------------------------------

    def _decoder(self, schema_id: int) -> tuple[str, Decode | SchemaError]:
        """Look the schema up (one look-up at a time: the others then find it cached)."""
        if self.registry is None:
            raise RegistryError("no schema registry is configured for this cluster",
                                retryable=True)  # fmt: skip
        with self._resolving:
            found = self._decoders.get(schema_id)
            if found is None:
                found = self._resolve(self.registry, schema_id)
                with self._lock:
                    self._decoders[schema_id] = found
                    while len(self._decoders) > DECODER_CACHE_SIZE:  # the oldest goes
                        self._decoders.pop(next(iter(self._decoders)))
        return found

    def _resolve(
        self, registry: RegistryClient, schema_id: int
    ) -> tuple[str, Decode | SchemaError]:
        now = self.clock()
        if now < self._down_until:
            raise RegistryError(self._down_reason, retryable=True)
        missing = self._missing.get(schema_id)
        if missing is not None and now < missing[0]:
            raise RegistryError(missing[1], retryable=True)
        try:
            schema = registry.schema_by_id(schema_id)
            decoder = self._compile(registry, schema)
        except RegistryError as exc:
            if exc.status == 404:
                self._missing[schema_id] = (now + MISSING_RETRY_S, exc.message)
            elif exc.retryable:
                self._registry_failed(exc.message)
            raise
        self._missing.pop(schema_id, None)
        self._backoff = BACKOFF_MIN_S
        self._down_until = 0.0
        return schema.schema_type, decoder

    def _registry_failed(self, reason: str) -> None:
        if self.clock() >= self._down_until:
            log.warning("schema registry of %s: %s; asking again in %.0f s",
                        self.cluster or "cluster", reason, self._backoff)  # fmt: skip
        self._down_reason = reason
        self._down_until = self.clock() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    def _compile(self, registry: RegistryClient, schema: RegisteredSchema) -> Decode | SchemaError:
        """A decoder for the schema, or the SchemaError that says why there is none (kept:
        a schema id never changes, so neither does the verdict)."""
        try:
            if schema.schema_type == "AVRO":
                named = [text for _, text in self._references(registry, schema, 0)]
                return avro_decoder(schema.text, named)
            if schema.schema_type == "PROTOBUF":
                imports = dict(self._references(registry, schema, 0))
                main = f"eventscope-schema-{schema.id}.proto"
                files = protobuf_files(schema.text, main, imports)
                return ProtobufSchema(files, main).decoder_for_indexes()
            if schema.schema_type == "JSON":
                return json_decoder()
            return SchemaError(f"unknown schema type {schema.schema_type!r}")
        except SchemaError as exc:
            return exc

    def _references(
        self, registry: RegistryClient, schema: RegisteredSchema, depth: int
    ) -> list[tuple[str, str]]:
        """(name, text) of every schema `schema` refers to, dependencies first."""
        if depth > MAX_REFERENCE_DEPTH:
            raise SchemaError("schema references nest deeper than 16")
        found: list[tuple[str, str]] = []
        for reference in schema.references:
            version = registry.version(reference.subject, reference.version)
            for item in self._references(registry, version.schema, depth + 1):
                if item not in found:
                    found.append(item)
            item = (reference.name, version.schema.text)
            if item not in found:
                found.append(item)
        return found

    def _known_subjects(self) -> frozenset[str]:
        """The registry's subjects, asked at most once a minute (never while it is down)."""
        now = self.clock()
        due = self._subjects_at is None or now - self._subjects_at >= SUBJECTS_REFRESH_S
        if due and self.registry is not None and now >= self._down_until:
            self._subjects_at = now
            try:
                self._subjects = frozenset(self.registry.subjects())
            except RegistryError as exc:
                self._registry_failed(exc.message)
        return self._subjects
