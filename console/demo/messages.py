"""The shop's wire format: CloudEvents in Kafka binary mode, and Spring Kafka's error headers.

Every message is a CloudEvent in binary mode: the value is the JSON `data`, each attribute
is a `ce_<attribute>` header. Three extension attributes carry the flow ids eventscope
reads (see collectors/conventions.py): `ce_correlationid` (the whole order), `ce_causationid`
(the event this one reacts to) and `ce_sagaid` (the checkout saga).

Retries and dead letters carry the headers Spring Kafka's retry topics and
`DeadLetterPublishingRecoverer` write, with the same binary encodings (big-endian ints),
so that a record from this demo looks like one from a Spring service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Headers = list[tuple[str, bytes]]

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
AVRO_CONTENT_TYPE = "application/avro"

ATTEMPTS_HEADER = "retry_topic-attempts"
BACKOFF_HEADER = "retry_topic-backoff-timestamp"
ORIGINAL_TIMESTAMP_HEADER = "retry_topic-original-timestamp"
_DLT_PREFIX = "kafka_dlt-"
_RETRY_PREFIX = "retry_topic-"
_TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class FlowIds:
    """The ids a message inherits from the one it reacts to."""

    correlation_id: str
    saga_id: str
    causation_id: str | None = None


@dataclass(frozen=True)
class Envelope:
    """The CloudEvents attributes (and the demo's extensions) of one message."""

    id: str
    type: str
    source: str
    subject: str
    time: str
    correlation_id: str
    saga_id: str
    causation_id: str | None = None

    @classmethod
    def new(cls, event_type: str, source: str, subject: str, ids: FlowIds) -> Envelope:
        return cls(
            id=str(uuid.uuid4()),
            type=event_type,
            source=source,
            subject=subject,
            time=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            correlation_id=ids.correlation_id,
            saga_id=ids.saga_id,
            causation_id=ids.causation_id,
        )

    def follow(self) -> FlowIds:
        """Ids for a message caused by this one."""
        return FlowIds(self.correlation_id, self.saga_id, causation_id=self.id)

    def headers(self, content_type: str = CONTENT_TYPE) -> Headers:
        headers = [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.type),
            ("ce_time", self.time),
            ("ce_subject", self.subject),
            ("content-type", content_type),
            ("ce_correlationid", self.correlation_id),
            ("ce_sagaid", self.saga_id),
        ]
        if self.causation_id:
            headers.append(("ce_causationid", self.causation_id))
        return [(name, value.encode()) for name, value in headers]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes | None]]) -> Envelope | None:
        """The envelope of a binary-mode CloudEvent, or None when required headers are missing."""
        values: dict[str, str] = {}
        for name, raw in headers:
            if raw is not None and name.lower().startswith("ce_"):
                values.setdefault(name.lower()[3:], raw.decode("utf-8", "replace"))
        required = ("id", "type", "source", "correlationid", "sagaid")
        if any(not values.get(name) for name in required):
            return None
        return cls(
            id=values["id"],
            type=values["type"],
            source=values["source"],
            subject=values.get("subject", ""),
            time=values.get("time", ""),
            correlation_id=values["correlationid"],
            saga_id=values["sagaid"],
            causation_id=values.get("causationid") or None,
        )


def encode_data(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def decode_data(value: bytes | None) -> dict[str, Any]:
    """The JSON object of a value; anything else (absent, not JSON, not an object) is {}."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- Spring Kafka retry topics and dead-letter topics ---------------------------------------


def int32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=True)


def int64(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def attempt_of(headers: Sequence[tuple[str, bytes | None]]) -> int:
    """The delivery attempt a record is on: `retry_topic-attempts`, else 1 (first delivery)."""
    for name, raw in headers:
        if name == ATTEMPTS_HEADER and raw is not None and len(raw) == 4:
            return max(1, int.from_bytes(raw, "big", signed=True))
    return 1


def due_ms_of(headers: Sequence[tuple[str, bytes | None]]) -> int | None:
    """When a retry record may be processed (`retry_topic-backoff-timestamp`), if it says."""
    for name, raw in headers:
        if name == BACKOFF_HEADER and raw:
            return int.from_bytes(raw, "big", signed=True)
    return None


def original_timestamp_of(headers: Sequence[tuple[str, bytes | None]], default: int) -> int:
    """When the first delivery was produced (kept across retries), else `default`."""
    for name, raw in headers:
        if name == ORIGINAL_TIMESTAMP_HEADER and raw and len(raw) == 8:
            return int.from_bytes(raw, "big", signed=True)
    return default


def carried_over(headers: Sequence[tuple[str, bytes | None]]) -> Headers:
    """The headers a forwarded copy keeps: all but earlier retry/DLT and trace headers."""
    return [
        (name, raw)
        for name, raw in headers
        if raw is not None
        and not name.startswith((_DLT_PREFIX, _RETRY_PREFIX))
        and name.lower() not in _TRACE_HEADERS
    ]


def retry_headers(attempt: int, due_ms: int, original_timestamp_ms: int) -> Headers:
    """Headers of a copy sent to the retry topic for the given (next) attempt."""
    return [
        (ATTEMPTS_HEADER, int32(attempt)),
        (BACKOFF_HEADER, int64(due_ms)),
        (ORIGINAL_TIMESTAMP_HEADER, int64(original_timestamp_ms)),
    ]


@dataclass(frozen=True)
class Failure:
    """What went wrong, in the terms a Java listener would report it."""

    exception_fqcn: str
    cause_fqcn: str
    message: str
    stacktrace: str


def dead_letter_headers(
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    group: str,
    failure: Failure,
    attempts: int,
) -> Headers:
    """`DeadLetterPublishingRecoverer`'s headers for a record consumed at the given place,
    with the attempt count Spring's retry topics keep on the dead letter."""
    return [
        (ATTEMPTS_HEADER, int32(attempts)),
        (f"{_DLT_PREFIX}original-topic", topic.encode()),
        (f"{_DLT_PREFIX}original-partition", int32(partition)),
        (f"{_DLT_PREFIX}original-offset", int64(offset)),
        (f"{_DLT_PREFIX}original-timestamp", int64(timestamp_ms)),
        (f"{_DLT_PREFIX}original-timestamp-type", b"CreateTime"),
        (f"{_DLT_PREFIX}original-consumer-group", group.encode()),
        (f"{_DLT_PREFIX}exception-fqcn", failure.exception_fqcn.encode()),
        (f"{_DLT_PREFIX}exception-cause-fqcn", failure.cause_fqcn.encode()),
        (f"{_DLT_PREFIX}exception-message", failure.message.encode()),
        (f"{_DLT_PREFIX}exception-stacktrace", failure.stacktrace.encode()),
    ]


def ledger_null_amount(order_id: str) -> Failure:
    """What the ledger service (the poison-pill fault) fails with, every time."""
    cause = "java.lang.NullPointerException"
    message = f'Cannot read field "amount" because "order.payment" is null ({order_id})'
    listener = "org.springframework.kafka.listener.ListenerExecutionFailedException"
    stacktrace = (
        f"{listener}: Listener method 'book' threw exception\n"
        f"Caused by: {cause}: {message}\n"
        "\tat com.example.shop.ledger.LedgerListener.book(LedgerListener.java:57)\n"
    )
    return Failure(listener, cause, f"Listener failed; {message}", stacktrace)


def gateway_timeout(attempts: int, timeout_ms: int) -> Failure:
    """The failure the payment service dead-letters after its last attempt."""
    cause = "com.example.shop.payment.GatewayTimeoutException"
    message = f"payment gateway did not answer within {timeout_ms} ms (attempt {attempts})"
    listener = "org.springframework.kafka.listener.ListenerExecutionFailedException"
    stacktrace = (
        f"{listener}: Listener method 'charge' threw exception\n"
        f"Caused by: {cause}: {message}\n"
        "\tat com.example.shop.payment.GatewayClient.charge(GatewayClient.java:88)\n"
        "\tat com.example.shop.payment.PaymentListener.charge(PaymentListener.java:41)\n"
    )
    return Failure(listener, cause, f"Listener failed; {message}", stacktrace)
