"""Builders for span records and index rows used by the tracing and lineage tests."""

from __future__ import annotations

from typing import Any

from collectors.index.writer import write_batch
from collectors.otlp_model import SpanRecord

BASE_NS = 1_700_000_000_000_000_000


def span(
    trace: str,
    span_id: str,
    *,
    parent: str | None = None,
    name: str = "work",
    kind: int = 1,
    service: str = "svc",
    start_ms: int = 0,
    duration_ms: int = 5,
    status: int = 0,
    links: list[tuple[str, str]] = (),  # type: ignore[assignment]
    **messaging: Any,
) -> SpanRecord:
    start = BASE_NS + start_ms * 1_000_000
    end = start + duration_ms * 1_000_000
    record = SpanRecord(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        service_name=service,
        start_ns=start,
        end_ns=end,
        duration_ns=end - start,
        status_code=status,
        status_message="boom" if status == 2 else None,
        attributes={"messaging.system": "kafka"} if messaging else {},
        resource_attributes={"service.name": service},
        events=[],
        links=[{"trace_id": t, "span_id": s, "attributes": {}} for t, s in links],
    )
    for key, value in messaging.items():
        setattr(record, key, value)
    return record


def event_row(topic: str, offset: int, *, partition: int = 0, cluster: str = "c1",
              ts_ms: int = 0, **identity: Any) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {
        "cluster": cluster, "topic": topic, "partition": partition, "offset": offset,
        "timestamp_ms": BASE_NS // 1_000_000 + ts_ms, "indexed_at_ms": 0, "key": None,
        "key_hash": None, "value": b"{}", "value_size": 2, "value_truncated": False,
        "is_tombstone": False, "content_type": "json", "schema_id": None, "headers": "[]",
        "event_id": None, "event_type": None, "source": None, "correlation_id": None,
        "causation_id": None, "trace_id": None, "span_id": None, "saga_id": None,
        "is_dlq": False, "dlq_original_topic": None, "dlq_original_partition": None,
        "dlq_original_offset": None, "dlq_error_class": None, "dlq_error_message": None,
        "dlq_stacktrace": None, "dlq_attempts": None, "dlq_format": None,
    }  # fmt: skip
    row.update(identity)
    return row


def index_rows(engine: Any, rows: list[dict[str, Any]]) -> None:
    for cluster in {row["cluster"] for row in rows}:
        mine = [row for row in rows if row["cluster"] == cluster]
        write_batch(engine, cluster, mine, {}, 0)
