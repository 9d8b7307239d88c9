"""Turn one raw Kafka record into one index row.

The tap calls :func:`normalize` for every record of every topic, so this module is pure (no
I/O, no clock) and built for throughput: header names are lower-cased once per record into a
dict, candidate header names are lower-cased and JSON paths split once when a
:class:`Conventions` is built, and a value is decoded and parsed at most once. The usual
headers (short UTF-8 text) become ``headers_json`` with one join and one decode.

Which header or JSON field feeds which index column is data, not code: :class:`Conventions`
holds the ordered candidates and :meth:`Conventions.describe` renders them for the user
documentation, so the documentation cannot drift from the behaviour.

Every input is treated as hostile. Values that are not UTF-8, absurd sizes, malformed trace
headers or wrong types degrade to ``None`` / ``"binary"``; :func:`normalize` does not raise.

It is long because the hot path lives in one module: the conventions' data, the per-record
lookups and the header decoding share precomputed module-level tables, and splitting them
would add calls per record on the tap's hottest path.
"""

from __future__ import annotations

import base64
import codecs
import dataclasses
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from collectors.schemas.decoders import to_json
from collectors.schemas.decoding import (
    DECODED,
    FAILED,
    PENDING,
    UNKNOWN_FRAMED,
    Decoded,
    RecordDecoder,
)
from collectors.schemas.wire import MAGIC_BYTE

IDENTITY_MAX_CHARS = 512
"""Identity values (ids, type, source, topic names) longer than this are cut."""

HEADER_VALUE_CAP = 16 * 1024
"""Bytes of one header value kept in ``headers_json``."""

MAX_STORED_HEADERS = 1000
"""Headers kept in ``headers_json``; lookups still see every header."""

ERROR_MESSAGE_MAX_CHARS = 16 * 1024
STACKTRACE_MAX_CHARS = 64 * 1024

CONTENT_TYPE_HEADER = "content-type"
STRUCTURED_CLOUDEVENTS_PREFIX = "application/cloudevents"
CLOUDEVENTS_HEADER_PREFIX = "ce_"

_SPRING_DLT_PREFIX = "kafka_dlt-"
_CONNECT_DLQ_PREFIX = "__connect.errors."

# Dead-letter headers that mark a record as dead-lettered without feeding a column of their
# own (the column-feeding ones are configurable lists in Conventions).
_EXTRA_DLQ_MARKER_HEADERS = (
    "kafka_dlt-original-timestamp",
    "kafka_dlt-original-timestamp-type",
    "kafka_dlt-original-consumer-group",
    "kafka_dlt-exception-cause-fqcn",
    "__connect.errors.connector.name",
    "__connect.errors.task.id",
    "__connect.errors.stage",
    "__connect.errors.class.name",
)

# Headers whose value may reveal that a Confluent-framed value is protobuf, not Avro.

# Keys that make a JSON object look like an event envelope rather than a bare entity, so
# that `$.id` is an event id and not, say, an order id.
_ENVELOPE_KEYS = ("type", "eventType", "data", "payload", "specversion")

_LOOKS_LIKE_JSON = re.compile(rb"[ \t\r\n]*[\[{]")
_JSON_OPENERS = b"[{"
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Python's decoder accepts NaN and Infinity; strict JSON does not.
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# orjson parses the usual value twice as fast but reads integers past 64 bits as floats
# (an id of 20+ digits would lose its last ones): values with a run of 20 digits, and
# whatever orjson refuses, take Python's decoder. (A translate finds such a run in a
# tenth of the time a regular expression takes.)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else byte for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 20
_HEADER_VALUE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_json_string = json.encoder.encode_basestring  # str -> quoted, escaped JSON string
_ODD_HEX_DIGITS = "13579bdf"
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16
_MAX_DECIMAL_DIGITS = 19  # fits a signed 64-bit long


class RawRecord(NamedTuple):
    """One Kafka record as consumed, before any interpretation (a tuple: the tap makes one
    per record, and a frozen dataclass costs three times as much to build)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]  # order and duplicates as on the wire


@dataclass(slots=True)
class NormalizedEvent:
    """One index row: record coordinates, capped payload and everything derived from it.

    Fields named like a column of `events` are that column (collectors/index/event_row.py
    takes them by name); `trace_sampled` is not stored."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    value_size: int
    value_truncated: bool
    is_tombstone: bool
    headers: str  # JSON: [[name, value], ...] in wire order (the `headers` column)
    content_type: str
    schema_id: int | None
    key_schema_id: int | None
    decoded_key: str | None
    decoded_value: str | None
    decode_state: str | None
    decode_note: str | None
    event_id: str | None
    event_type: str | None
    source: str | None
    correlation_id: str | None
    causation_id: str | None
    trace_id: str | None
    span_id: str | None
    saga_id: str | None
    trace_sampled: bool | None
    is_dlq: bool
    dlq_original_topic: str | None
    dlq_original_partition: int | None
    dlq_original_offset: int | None
    dlq_error_class: str | None
    dlq_error_message: str | None
    dlq_stacktrace: str | None
    dlq_attempts: int | None
    dlq_format: str | None


class _FieldPlan(NamedTuple):
    """Precomputed lookup order for one identity column."""

    # (lower-case header name, structured CloudEvents attribute or None), in priority order
    header_steps: tuple[tuple[str, str | None], ...]
    # the same lower-case header names alone, for records that are not structured CloudEvents
    header_names: tuple[str, ...]
    json_paths: tuple[tuple[str, ...], ...]
    # JSON paths only count in a document that looks like an event envelope
    envelopes_only: bool


@dataclass
class Conventions:
    """Ordered candidate sources for every derived column; the first non-empty match wins.

    Header names match case-insensitively. A header candidate named ``ce_<attr>`` also reads
    attribute ``<attr>`` of a structured CloudEvents document, right after the header
    itself. JSON paths are dotted (``$.metadata.correlationId``; a numeric segment indexes
    a list) and are read from the value (binary mode) or from the structured document and
    then its ``data`` object. Only string and number values count.

    Lookups are precomputed at construction: build a new instance (:meth:`from_mapping`,
    :func:`dataclasses.replace`) instead of mutating the lists in place.
    """

    event_id_headers: list[str] = field(
        default_factory=lambda: ["ce_id", "event_id", "eventId", "message_id", "x-event-id"]
    )
    event_id_json_paths: list[str] = field(default_factory=lambda: ["$.eventId", "$.id"])
    event_id_json_requires_envelope: bool = True
    event_type_headers: list[str] = field(
        default_factory=lambda: ["ce_type", "event_type", "eventType", "type"]
    )
    event_type_json_paths: list[str] = field(default_factory=lambda: ["$.eventType", "$.type"])
    source_headers: list[str] = field(
        default_factory=lambda: ["ce_source", "source", "service", "producer"]
    )
    source_json_paths: list[str] = field(default_factory=list)
    correlation_id_headers: list[str] = field(
        default_factory=lambda: [
            "correlation_id",
            "correlationId",
            "x-correlation-id",
            "X-Correlation-ID",
            "x-request-id",
            "ce_correlationid",
        ]
    )
    correlation_id_json_paths: list[str] = field(
        default_factory=lambda: ["$.correlationId", "$.metadata.correlationId"]
    )
    causation_id_headers: list[str] = field(
        default_factory=lambda: ["causation_id", "causationId", "x-causation-id", "ce_causationid"]
    )
    causation_id_json_paths: list[str] = field(
        default_factory=lambda: ["$.causationId", "$.metadata.causationId"]
    )
    saga_id_headers: list[str] = field(
        default_factory=lambda: ["saga_id", "sagaId", "x-saga-id", "ce_sagaid"]
    )
    saga_id_json_paths: list[str] = field(default_factory=lambda: ["$.sagaId"])
    traceparent_headers: list[str] = field(
        default_factory=lambda: ["traceparent", "ce_traceparent"]
    )
    dlq_original_topic_headers: list[str] = field(
        default_factory=lambda: [
            "kafka_dlt-original-topic",
            "__connect.errors.topic",
            "x-original-topic",
        ]
    )
    dlq_original_partition_headers: list[str] = field(
        default_factory=lambda: [
            "kafka_dlt-original-partition",
            "__connect.errors.partition",
            "x-original-partition",
        ]
    )
    dlq_original_offset_headers: list[str] = field(
        default_factory=lambda: [
            "kafka_dlt-original-offset",
            "__connect.errors.offset",
            "x-original-offset",
        ]
    )
    dlq_error_class_headers: list[str] = field(
        default_factory=lambda: [
            "kafka_dlt-exception-fqcn",
            "kafka_dlt-key-exception-fqcn",
            "kafka_dlt-exception-cause-fqcn",
            "__connect.errors.exception.class.name",
            "x-exception",
        ]
    )
    dlq_error_message_headers: list[str] = field(
        default_factory=lambda: [
            "kafka_dlt-exception-message",
            "kafka_dlt-key-exception-message",
            "__connect.errors.exception.message",
            "x-error-message",
        ]
    )
    dlq_stacktrace_headers: list[str] = field(
        default_factory=lambda: [
            "kafka_dlt-exception-stacktrace",
            "kafka_dlt-key-exception-stacktrace",
            "__connect.errors.exception.stacktrace",
        ]
    )
    dlq_attempts_headers: list[str] = field(
        default_factory=lambda: [
            "retry_topic-attempts",
            "kafka_deliveryAttempt",
            "x-retry-count",
            "x-attempts",
        ]
    )
    dlq_topic_patterns: list[str] = field(
        default_factory=lambda: [
            "*.DLT",
            "*-dlt",
            "*.DLQ",
            "*-dlq",
            "*_dlq",
            "dlq.*",
            "*.dead-letter",
        ]
    )
    value_cap: int = 1_048_576

    _identity_plans: tuple[_FieldPlan, ...] = field(init=False, repr=False, compare=False)
    _trace_plan: _FieldPlan = field(init=False, repr=False, compare=False)
    _dlq_columns: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _dlq_markers: frozenset[str] = field(init=False, repr=False, compare=False)
    _dlq_header_names: frozenset[str] = field(init=False, repr=False, compare=False)
    _dlq_topic_regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _dlq_topic_cache: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._identity_plans = tuple(  # in _IDENTITY_COLUMNS order
            _field_plan(
                getattr(self, f"{column}_headers"),
                getattr(self, f"{column}_json_paths"),
                envelopes_only=column == "event_id" and self.event_id_json_requires_envelope,
            )
            for column in _IDENTITY_COLUMNS
        )
        self._trace_plan = _field_plan(self.traceparent_headers, ())
        self._dlq_columns = {
            column: tuple(_unique_lower(getattr(self, f"{column}_headers")))
            for column in _DLQ_COLUMNS
        }
        markers = {name.lower() for name in _EXTRA_DLQ_MARKER_HEADERS}
        for column, names in self._dlq_columns.items():
            if column != "dlq_attempts":  # retry counters also appear on retry topics
                markers.update(names)
        self._dlq_markers = frozenset(markers)
        self._dlq_header_names = self._dlq_markers.union(self._dlq_columns["dlq_attempts"])
        self._dlq_topic_regex = (
            re.compile("|".join(fnmatch.translate(p) for p in self.dlq_topic_patterns), re.I)
            if self.dlq_topic_patterns
            else None
        )
        self._dlq_topic_cache = {}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Conventions:
        """Defaults overridden by ``data`` (e.g. a ``[conventions]`` TOML table).

        Raises ``ValueError`` naming the offending key for unknown keys, wrong types,
        a non-positive ``value_cap`` or a JSON path that does not start with ``$.``.
        """
        if not isinstance(data, Mapping):
            raise ValueError("conventions: expected a table of settings")
        defaults = cls()
        settable = {f.name for f in dataclasses.fields(cls) if f.init}
        changes: dict[str, Any] = {}
        for key, raw in data.items():
            if not isinstance(key, str) or key not in settable:
                raise ValueError(f"conventions: unknown key {key!r}")
            default = getattr(defaults, key)
            if isinstance(default, bool):
                if not isinstance(raw, bool):
                    raise ValueError(f"conventions: {key} must be true or false")
            elif isinstance(default, int):
                if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                    raise ValueError(f"conventions: {key} must be a positive integer")
            else:
                if not isinstance(raw, list | tuple) or not all(
                    isinstance(item, str) and item for item in raw
                ):
                    raise ValueError(f"conventions: {key} must be a list of non-empty strings")
                if key.endswith("_json_paths"):
                    for path in raw:
                        try:
                            split_json_path(path)
                        except ValueError as exc:
                            raise ValueError(f"conventions: {key}: {exc}") from None
                raw = list(raw)
            changes[key] = raw
        return cls(**changes)

    def describe(self) -> list[tuple[str, list[str]]]:
        """(index column, ordered sources) pairs, in the order the user documentation shows."""
        rows: list[tuple[str, list[str]]] = []
        for column in _IDENTITY_COLUMNS:
            sources = _describe_headers(getattr(self, f"{column}_headers"))
            for path in getattr(self, f"{column}_json_paths"):
                if column == "event_id" and self.event_id_json_requires_envelope:
                    sources.append(f"JSON {path} (only when the value is an event envelope)")
                else:
                    sources.append(f"JSON {path}")
            if column == "event_type":
                sources.append("topic name")
            elif column == "source":
                sources.append("OpenTelemetry service.name of the producer span")
            elif column == "saga_id":
                sources.append("correlation_id")
            rows.append((column, sources))
        trace_sources = [
            f"traceparent from {source}" for source in _describe_headers(self.traceparent_headers)
        ]
        rows.append(("trace_id", trace_sources))
        rows.append(("span_id", list(trace_sources)))
        rows.append(("trace_sampled", list(trace_sources)))
        rows.append(
            (
                "content_type",
                [
                    "empty for a null or zero-length value",
                    "avro-confluent / protobuf-confluent / json-schema-confluent for a record "
                    "in the registry's wire format, by the type of its schema "
                    "(schema-registry while the schema is not known yet)",
                    "avro / protobuf when a schema file configured for the topic decodes it",
                    "cloudevents-json when header content-type starts with application/cloudevents",
                    "json, text or binary from the value bytes",
                ],
            )
        )
        rows.append(("schema_id", ["Confluent wire prefix: byte 0, then a 4-byte schema id"]))
        rows.append(("key_schema_id", ["the key's Confluent wire prefix, as for schema_id"]))
        marker_names = [
            name
            for column in _DLQ_COLUMNS
            if column != "dlq_attempts"
            for name in getattr(self, f"{column}_headers")
        ]
        marker_names.extend(_EXTRA_DLQ_MARKER_HEADERS)
        rows.append(
            (
                "is_dlq",
                [f"header {name}" for name in dict.fromkeys(marker_names)]
                + [f"topic name matching {pattern}" for pattern in self.dlq_topic_patterns],
            )
        )
        rows.append(
            (
                "dlq_format",
                [
                    f"spring when a {_SPRING_DLT_PREFIX}* header is present",
                    f"connect when a {_CONNECT_DLQ_PREFIX}* header is present",
                    "generic for any other dead-letter header",
                ],
            )
        )
        for column in _DLQ_COLUMNS:
            rows.append((column, _describe_headers(getattr(self, f"{column}_headers"))))
        return rows


_IDENTITY_COLUMNS = (
    "event_id",
    "event_type",
    "source",
    "correlation_id",
    "causation_id",
    "saga_id",
)
_DLQ_COLUMNS = (
    "dlq_original_topic",
    "dlq_original_partition",
    "dlq_original_offset",
    "dlq_error_class",
    "dlq_error_message",
    "dlq_stacktrace",
    "dlq_attempts",
)


def _unique_lower(names: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name.lower(), None)
    return list(seen)


def _field_plan(
    headers: Iterable[str], json_paths: Iterable[str], envelopes_only: bool = False
) -> _FieldPlan:
    steps = tuple(_header_steps(headers))
    return _FieldPlan(
        header_steps=steps,
        header_names=tuple(name for name, _ in steps),
        json_paths=tuple(split_json_path(path) for path in json_paths),
        envelopes_only=envelopes_only,
    )


def _header_steps(names: Iterable[str]) -> list[tuple[str, str | None]]:
    steps = []
    for name in _unique_lower(names):
        attribute = None
        if name.startswith(CLOUDEVENTS_HEADER_PREFIX):
            attribute = name[len(CLOUDEVENTS_HEADER_PREFIX) :] or None
        steps.append((name, attribute))
    return steps


def _describe_headers(names: Iterable[str]) -> list[str]:
    sources = []
    for name in names:
        sources.append(f"header {name}")
        attribute = _header_steps([name])[0][1]
        if attribute is not None:
            sources.append(f"structured CloudEvents attribute {attribute}")
    return sources


def split_json_path(path: str) -> tuple[str, ...]:
    """`$.a.b.0` as its segments (`$.` then names or list indexes, dot-separated)."""
    if not isinstance(path, str) or not path.startswith("$."):
        raise ValueError(f"JSON path {path!r} must start with '$.'")
    segments = tuple(path[2:].split("."))
    if not all(segments):
        raise ValueError(f"JSON path {path!r} has an empty segment")
    return segments


def is_dlq_topic(topic: str, conventions: Conventions) -> bool:
    """True when ``topic`` matches one of the dead-letter name patterns (case-insensitive)."""
    if not isinstance(topic, str):
        return False
    cache = conventions._dlq_topic_cache
    known = cache.get(topic)
    if known is not None:
        return known
    regex = conventions._dlq_topic_regex
    result = bool(regex is not None and regex.match(topic))
    if len(cache) > 10_000:  # a cluster has few topics; bound memory against odd callers
        cache.clear()
    cache[topic] = result
    return result


def parse_traceparent(value: str) -> tuple[str, str, bool] | None:
    """(trace id, parent span id, sampled) from a W3C ``traceparent``, or None if invalid.

    Lower-case hex only; all-zero ids and version ``ff`` are invalid. A version newer than
    ``00`` may carry more fields after the first 55 characters, separated by ``-``.
    """
    if not isinstance(value, str):
        return None
    return _trace_of(value.strip())


def _trace_of(value: str) -> tuple[str, str, bool] | None:
    """:func:`parse_traceparent` for text already stripped."""
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    return trace_id, span_id, flags[1] in _ODD_HEX_DIGITS  # the "sampled" bit


def normalize(
    record: RawRecord, conventions: Conventions, decoder: RecordDecoder | None = None
) -> NormalizedEvent:
    """Derive the index row for ``record`` following ``conventions``; `decoder` reads the
    cluster's registry-framed and schema-file records (without one, framed records are
    left pending: no registry is configured)."""
    headers_json, by_name = _read_headers(record.headers)
    topic = record.topic if isinstance(record.topic, str) else str(record.topic)
    key = record.key

    value = record.value
    if type(value) is not bytes:
        value = _as_bytes(value)
    value_cap = conventions.value_cap
    if value is None:
        value_size, stored_value, truncated = -1, None, False
    else:
        value_size = len(value)
        truncated = value_size > value_cap
        stored_value = value[:value_cap] if truncated else value

    structured = False
    content_type_header = by_name.get(CONTENT_TYPE_HEADER)
    if content_type_header:
        structured = (
            _header_text(content_type_header, 256).lower().startswith(STRUCTURED_CLOUDEVENTS_PREFIX)
        )
    if decoder is None:
        decoder = _NO_SCHEMAS
    key = key if type(key) is bytes or key is None else _as_bytes(key)
    schema_value = _schema_decoding(decoder, topic, "value", stored_value, truncated, value_size)
    schema_key = _schema_decoding(decoder, topic, "key", key, False, 0) if key else None
    if schema_value is not None and schema_value.content_type is not None:
        content_type = schema_value.content_type
        schema_id, document = schema_value.schema_id, schema_value.document
        structured = False
    else:
        content_type, schema_id, document = _classify_value(stored_value, truncated, structured)
    decoded_value = decoded_key = decode_state = decode_note = key_schema_id = None
    if schema_value is not None or schema_key is not None:
        decoded_value, decoded_key, decode_state, decode_note, key_schema_id = _decoding_columns(
            schema_value, schema_key, value_cap
        )

    structured_doc: dict[str, Any] | None = None
    json_roots: tuple[Any, ...] = ()
    if document is not None:
        if structured and isinstance(document, dict):
            structured_doc = document
            data = document.get("data")
            json_roots = (document, data) if isinstance(data, dict) else (document,)
        else:
            json_roots = (document,)

    event_id, event_type, source, correlation_id, causation_id, saga_id = _identities(
        conventions._identity_plans, by_name, structured_doc, json_roots
    )
    trace = _find_trace(conventions._trace_plan, by_name, structured_doc)

    attempts: int | None = None
    has_dlq_headers = False
    dlq_format: str | None = None
    original_topic = error_class = error_message = stacktrace = None
    original_partition = original_offset = None
    # Most records carry no dead-letter or retry header at all: one set test covers them.
    if not conventions._dlq_header_names.isdisjoint(by_name):
        dlq_columns = conventions._dlq_columns
        attempts = _first_int(dlq_columns["dlq_attempts"], by_name)
        has_dlq_headers = not conventions._dlq_markers.isdisjoint(by_name)
    if has_dlq_headers:
        dlq_format = _dlq_format(by_name, conventions._dlq_markers)
        original_topic = _first_text(dlq_columns["dlq_original_topic"], by_name, IDENTITY_MAX_CHARS)
        original_partition = _first_int(dlq_columns["dlq_original_partition"], by_name)
        original_offset = _first_int(dlq_columns["dlq_original_offset"], by_name)
        error_class = _first_text(dlq_columns["dlq_error_class"], by_name, IDENTITY_MAX_CHARS)
        error_message = _first_text(
            dlq_columns["dlq_error_message"], by_name, ERROR_MESSAGE_MAX_CHARS
        )
        stacktrace = _first_text(dlq_columns["dlq_stacktrace"], by_name, STACKTRACE_MAX_CHARS)

    # Positional arguments, in field order: keyword arguments cost more than the rest of
    # a typical record's normalisation put together.
    return NormalizedEvent(
        topic,  # topic
        record.partition,  # partition
        record.offset,  # offset
        record.timestamp_ms,  # timestamp_ms
        key,  # key
        stored_value,  # value
        value_size,  # value_size
        truncated,  # value_truncated
        value is None,  # is_tombstone
        headers_json,  # headers
        content_type,  # content_type
        schema_id,  # schema_id
        key_schema_id,  # key_schema_id
        decoded_key,  # decoded_key
        decoded_value,  # decoded_value
        decode_state,  # decode_state
        decode_note,  # decode_note
        event_id,  # event_id
        event_type or topic[:IDENTITY_MAX_CHARS] or None,  # event_type
        source,  # source
        correlation_id,  # correlation_id
        causation_id,  # causation_id
        trace[0] if trace else None,  # trace_id
        trace[1] if trace else None,  # span_id
        saga_id or correlation_id,  # saga_id
        trace[2] if trace else None,  # trace_sampled
        has_dlq_headers or is_dlq_topic(topic, conventions),  # is_dlq
        original_topic,  # dlq_original_topic
        original_partition,  # dlq_original_partition
        original_offset,  # dlq_original_offset
        error_class,  # dlq_error_class
        error_message,  # dlq_error_message
        stacktrace,  # dlq_stacktrace
        attempts,  # dlq_attempts
        dlq_format,  # dlq_format
    )


# --- headers -------------------------------------------------------------------------------


def _read_headers(headers: Any) -> tuple[str, dict[str, bytes | None]]:
    """One pass over the wire headers: the ``headers_json`` text and a lookup map.

    The map is keyed by lower-case name; for duplicated names it keeps the last occurrence,
    as Kafka's ``lastHeader`` does (Spring appends a fresh exception header on every
    dead-lettering).

    ``headers_json`` is a JSON list of ``[name, value]`` in wire order, duplicates kept. A
    value is a string when it is UTF-8 without NUL, ``{"b64": ...}`` otherwise, ``null`` for
    a null header. A value over :data:`HEADER_VALUE_CAP` bytes is stored as its first bytes,
    marked: ``{"text" | "b64": ..., "truncated": true, "size": <original bytes>}``. Past
    :data:`MAX_STORED_HEADERS` headers the list ends with ``["…", "<N> more headers"]``;
    lookups still see every header. NUL is kept out of text because databases reject it in
    text and JSON columns.
    """
    if not headers or isinstance(headers, str | bytes):
        return "[]", {}
    if type(headers) is list or type(headers) is tuple:
        plain = _read_plain_headers(headers)
        if plain is not None:
            return plain
    return _read_any_headers(headers)


# Bytes a JSON string must escape; a header value without them is copied as it is.
_JSON_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'


def _read_plain_headers(
    headers: list[Any] | tuple[Any, ...],
) -> tuple[str, dict[str, bytes | None]] | None:
    """:func:`_read_headers` for the usual shape, or None to take the general path.

    The usual shape: ``(str, bytes)`` pairs, names needing no JSON escape, values short
    UTF-8 needing no JSON escape either. Then ``headers_json`` is the name prefixes and the
    values concatenated as bytes and decoded once, which also checks every value is UTF-8.
    """
    if len(headers) > MAX_STORED_HEADERS:
        return None
    by_name: dict[str, bytes | None] = {}
    parts: list[bytes] = []
    plain_names = _PLAIN_NAMES
    try:
        for item in headers:
            if type(item) is not tuple:  # unpacking anything else may have side effects
                return None
            name, raw = item
            if type(name) is not str or type(raw) is not bytes:
                return None
            try:
                lookup_key, prefix = plain_names[name]
            except KeyError:
                forms = _name_forms(name)
                if forms.plain_prefix is None:
                    return None
                lookup_key, prefix = forms.lookup_key, forms.plain_prefix
            by_name[lookup_key] = raw
            parts += prefix, raw
    except ValueError:  # an item that is not a pair
        return None
    joined = b"".join(parts)
    # Every prefix is '"],["<name>","': four quotes and nothing else JSON escapes, so the
    # values need no escape when these are all. Their total length bounds each one.
    escapable = len(joined) - len(joined.translate(None, _JSON_ESCAPED_BYTES))
    if escapable != 4 * len(headers) or len(joined) > HEADER_VALUE_CAP:
        return None
    try:
        text = joined.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "[" + text[3:] + '"]]', by_name


def _read_any_headers(headers: Any) -> tuple[str, dict[str, bytes | None]]:
    """:func:`_read_headers` for any shape and content, skipping what is not a header."""
    entries: list[str] = []
    by_name: dict[str, bytes | None] = {}
    if isinstance(headers, Mapping):
        headers = headers.items()
    try:
        items = iter(headers)
    except TypeError:
        return "[]", by_name
    name_forms = _NAME_FORMS
    omitted = 0
    for item in items:
        try:
            name, raw = item
        except (TypeError, ValueError):
            continue
        if type(name) is not str:
            if not isinstance(name, bytes | bytearray | memoryview):
                continue
            name = bytes(name).decode("utf-8", "replace")
        if raw is not None and type(raw) is not bytes:
            raw = _as_bytes(raw)
        forms = name_forms.get(name) or _name_forms(name)
        by_name[forms.lookup_key] = raw
        if len(entries) >= MAX_STORED_HEADERS:
            omitted += 1
            continue
        # The usual short UTF-8 value skips the general path.
        if raw is not None and len(raw) <= HEADER_VALUE_CAP and 0 not in raw:
            try:
                entries.append(f"[{forms.json_text},{_json_string(raw.decode('utf-8'))}]")
                continue
            except UnicodeDecodeError:
                pass
        entries.append(
            f"[{forms.json_text},{_HEADER_VALUE_ENCODER.encode(_header_json_value(raw))}]"
        )
    if omitted:
        entries.append(f'["…",{_json_string(f"{omitted} more headers")}]')
    return "[" + ",".join(entries) + "]", by_name


class _NameForms(NamedTuple):
    lookup_key: str  # lower case
    json_text: str  # the name as a JSON string, for headers_json
    plain_prefix: bytes | None  # b'"],["<name>","' when the name needs no escaping


# Header names repeat across records: remember the forms of each, and separately the
# (lookup key, plain prefix) of the names that have a plain prefix.
_NAME_FORMS: dict[str, _NameForms] = {}
_PLAIN_NAMES: dict[str, tuple[str, bytes]] = {}
_NAME_FORMS_LIMIT = 4096


def _name_forms(name: str) -> _NameForms:
    printable = name
    if not name.isascii() or "\x00" in name:
        printable = name.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    json_text = _json_string(printable)
    plain = printable == name and json_text == f'"{name}"'
    forms = _NameForms(name.lower(), json_text, f'"],[{json_text},"'.encode() if plain else None)
    if len(_NAME_FORMS) >= _NAME_FORMS_LIMIT:
        _NAME_FORMS.clear()
        _PLAIN_NAMES.clear()
    _NAME_FORMS[name] = forms
    if forms.plain_prefix is not None:
        _PLAIN_NAMES[name] = (forms.lookup_key, forms.plain_prefix)
    return forms


def _header_json_value(raw: bytes | None) -> Any:
    """``headers_json`` value for what the fast path in :func:`_read_any_headers` left over:
    null, values holding NUL or invalid UTF-8, and values over the cap."""
    if raw is None:
        return None
    if len(raw) <= HEADER_VALUE_CAP:
        return {"b64": _b64(raw)}
    head = raw[:HEADER_VALUE_CAP]
    prefix = _decode_prefix(head)
    if prefix is not None and "\x00" not in prefix:
        return {"text": prefix, "truncated": True, "size": len(raw)}
    return {"b64": _b64(head), "truncated": True, "size": len(raw)}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _header_text(raw: bytes | None, max_chars: int) -> str:
    """Stripped text of a header value, lossy for non-UTF-8 bytes, at most ``max_chars``.

    NUL is dropped: databases refuse it in text columns.
    """
    if not raw:
        return ""
    # The usual case: nothing to cut. (`0 in raw` looks for a NUL byte, faster than b"\0".)
    if len(raw) <= max_chars and 0 not in raw:
        return raw.decode("utf-8", "replace").strip()
    text = raw[: max_chars * 4].decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text.strip()[:max_chars]


def _first_text(names: tuple[str, ...], by_name: dict[str, bytes | None], cap: int) -> str | None:
    for name in names:
        text = _header_text(by_name.get(name), cap)
        if text:
            return text
    return None


def _first_int(names: tuple[str, ...], by_name: dict[str, bytes | None]) -> int | None:
    for name in names:
        raw = by_name.get(name)
        if raw:
            number = _parse_counter(raw)
            if number is not None:
                return number
    return None


def _parse_counter(raw: bytes) -> int | None:
    """A non-negative int from a header written as ASCII decimal or big-endian binary.

    Spring writes partitions and attempts as 4-byte ints and offsets as 8-byte longs, other
    tools write decimal text. All-digit bytes are read as decimal even at 4 or 8 bytes: as
    binary they would mean a partition or offset beyond any real cluster (>= 0x30303030).
    """
    text = raw.strip()
    if text.isdigit() and len(text) <= _MAX_DECIMAL_DIGITS:
        return int(text)
    if len(raw) in (4, 8):
        number = int.from_bytes(raw, "big", signed=True)
        return number if number >= 0 else None
    return None


def _dlq_format(by_name: dict[str, bytes | None], markers: frozenset[str]) -> str:
    present = markers.intersection(by_name)
    if any(name.startswith(_SPRING_DLT_PREFIX) for name in present):
        return "spring"
    if any(name.startswith(_CONNECT_DLQ_PREFIX) for name in present):
        return "connect"
    return "generic"


# --- identity ------------------------------------------------------------------------------


def _identities(
    plans: tuple[_FieldPlan, ...],
    by_name: dict[str, bytes | None],
    structured_doc: dict[str, Any] | None,
    json_roots: tuple[Any, ...],
) -> list[str | None]:
    """The value of every identity column, in plan order.

    One loop rather than a call per column: this runs for every record.
    """
    values: list[str | None] = []
    get = by_name.get
    for plan in plans:
        value: str | None = None
        if structured_doc is None:
            for header in plan.header_names if by_name else ():
                raw = get(header)
                if raw:
                    if len(raw) <= IDENTITY_MAX_CHARS and 0 not in raw:
                        text = raw.decode("utf-8", "replace").strip()
                    else:
                        text = _header_text(raw, IDENTITY_MAX_CHARS)
                    if text:
                        value = text
                        break
        else:
            value = _structured_lookup(plan, by_name, structured_doc)
        if value is None and json_roots and plan.json_paths:
            value = _json_lookup(plan, json_roots)
        values.append(value)
    return values


def _structured_lookup(
    plan: _FieldPlan, by_name: dict[str, bytes | None], structured_doc: dict[str, Any]
) -> str | None:
    for header, attribute in plan.header_steps:
        text = _header_text(by_name.get(header), IDENTITY_MAX_CHARS)
        if text:
            return text
        if attribute is not None:
            value = _json_scalar_text(structured_doc.get(attribute))
            if value:
                return value
    return None


def _json_lookup(plan: _FieldPlan, json_roots: tuple[Any, ...]) -> str | None:
    for root in _envelopes(json_roots) if plan.envelopes_only else json_roots:
        is_object = type(root) is dict
        for path in plan.json_paths:
            if is_object and path[0] not in root:  # the usual miss, decided without a call
                continue
            node = resolve_json_path(root, path)
            if node is not None:
                text = _json_scalar_text(node)
                if text:
                    return text
    return None


def _envelopes(roots: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        root
        for root in roots
        if isinstance(root, dict) and any(key in root for key in _ENVELOPE_KEYS)
    )


def resolve_json_path(node: Any, path: tuple[str, ...]) -> Any:
    for segment in path:
        if isinstance(node, dict):
            node = node.get(segment)
        elif isinstance(node, list) and segment.isascii() and segment.isdigit():
            index = int(segment)
            node = node[index] if index < len(node) else None
        else:
            return None
    return node


def _json_scalar_text(node: Any) -> str | None:
    if isinstance(node, str):
        if "\x00" in node:
            node = node.replace("\x00", "")
        text = node.strip()[:IDENTITY_MAX_CHARS]
        return text or None
    if isinstance(node, int | float) and not isinstance(node, bool):
        return str(node)[:IDENTITY_MAX_CHARS]
    return None


def _find_trace(
    plan: _FieldPlan, by_name: dict[str, bytes | None], structured_doc: dict[str, Any] | None
) -> tuple[str, str, bool] | None:
    """The first *valid* traceparent among the candidates; malformed ones are skipped."""
    for header, attribute in plan.header_steps:
        raw = by_name.get(header)
        if raw:
            trace = _trace_of(_header_text(raw, 256))
            if trace is not None:
                return trace
        if attribute is not None and structured_doc is not None:
            candidate = structured_doc.get(attribute)
            if isinstance(candidate, str):
                trace = parse_traceparent(candidate[:256])
                if trace is not None:
                    return trace
    return None


# --- value ---------------------------------------------------------------------------------

_NO_SCHEMAS = RecordDecoder(None)
_STATE_RANK = {None: 0, DECODED: 1, PENDING: 2, FAILED: 3}


def _schema_decoding(
    decoder: RecordDecoder, topic: str, part: str, data: bytes | None, truncated: bool, size: int
) -> Decoded | None:
    if not data:
        return None
    if truncated and data[0] == MAGIC_BYTE:
        note = f"not decoded: the value ({size} bytes) is over the index's value cap"
        return Decoded(UNKNOWN_FRAMED, None, None, FAILED, note)
    return decoder.decode(topic, part, data)


def _decoding_columns(
    value: Decoded | None, key: Decoded | None, cap: int
) -> tuple[str | None, str | None, str | None, str | None, int | None]:
    """(decoded_value, decoded_key, decode_state, decode_note, key_schema_id): the state is
    the worse of the value's and the key's; the note says which part it is about."""
    notes = []
    state = None
    decoded: list[str | None] = [None, None]
    for slot, (part, result) in enumerate((("value", value), ("key", key))):
        if result is None:
            continue
        if _STATE_RANK[result.state] > _STATE_RANK[state]:
            state = result.state
        if result.note:
            notes.append(result.note if part == "value" else f"key: {result.note}")
        if result.state == DECODED:
            text = to_json(result.document)
            if len(text) > cap:
                notes.append(
                    f"{part}: decoded form ({len(text)} bytes) over the value cap, not kept"
                )
            else:
                decoded[slot] = text
    key_schema_id = key.schema_id if key is not None else None
    return (
        decoded[0],
        decoded[1],
        state,
        "; ".join(notes)[:ERROR_MESSAGE_MAX_CHARS] or None,
        key_schema_id,
    )


def _classify_value(
    value: bytes | None, truncated: bool, structured: bool
) -> tuple[str, int | None, Any]:
    """(content_type, schema_id, parsed JSON document or None) for a stored value that no
    schema decoded.

    A truncated value is never parsed; if its prefix is JSON-looking text it is still
    reported as json (or cloudevents-json), since the cut is ours and not the producer's.
    """
    if not value:
        return "empty", None, None
    json_start = _json_start(value)
    if (
        json_start >= 0
        and not truncated
        and _LONG_DIGIT_RUN not in value.translate(_DIGITS_AS_ZERO)
    ):
        try:
            return ("cloudevents-json" if structured else "json"), None, orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # Python's decoder below decides (it reads lone surrogates, for one)
    if truncated:
        text = _decode_prefix(value)
    else:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None:
        return "binary", None, None
    json_kind = "cloudevents-json" if structured else "json"
    if json_start >= 0 and not truncated:
        # JSONDecoder.decode, minus its whitespace scans: json_start skipped the leading
        # whitespace, the trailing one is checked here.
        try:
            document, end = _JSON_DECODER.raw_decode(text, json_start)
        except (ValueError, RecursionError):
            pass
        else:
            if end == len(text) or not text[end:].strip(" \t\n\r"):
                return json_kind, None, document
    if _CONTROL_CHARS.search(text):
        return "binary", None, None
    if json_start >= 0 and truncated:
        return json_kind, None, None
    return "text", None, None


def _json_start(value: bytes) -> int:
    """Index of the opening bracket of a value that looks like a JSON object or array
    (after JSON whitespace), else -1. Both are ASCII, so it is also the index in the text."""
    if value[0] in _JSON_OPENERS:
        return 0
    match = _LOOKS_LIKE_JSON.match(value)
    return -1 if match is None else match.end() - 1


def _decode_prefix(raw: bytes) -> str | None:
    """Decode bytes cut at an arbitrary point: a partial trailing character is dropped."""
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
    except UnicodeDecodeError:
        return None


def _as_bytes(data: Any) -> bytes | None:
    if data is None or type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8", "replace")
    return None
