"""Duplicate processing from real OpenTelemetry consumer spans (the SDK exporting OTLP/HTTP
to the console): a group that processed one record twice is found on the Event health page,
in its JSON twin and by the `duplicate_processing` alert rule; a record processed once, or
received and then processed (two operations), is not."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from console.alerts.rules import rule_from_mapping
from console.alerts.sources import Probes, samples


def _consume(tracer, topic: str, group: str, offset: int, operation: str) -> None:  # type: ignore[no-untyped-def]
    attributes = {
        "messaging.system": "kafka", "messaging.operation.type": operation,
        "messaging.destination.name": topic, "messaging.destination.partition.id": "0",
        "messaging.kafka.offset": offset, "messaging.consumer.group.name": group,
    }  # fmt: skip
    with tracer.start_as_current_span(f"{operation} {topic}", kind=SpanKind.CONSUMER,
                                      attributes=attributes):  # fmt: skip
        pass


async def test_a_record_processed_twice_by_one_group_is_found(live_server) -> None:  # type: ignore[no-untyped-def]
    topic, group = f"t-reprocess-{uuid.uuid4().hex[:8]}", f"billing-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
    exporter = OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    _consume(tracer, topic, group, 7, "receive")
    _consume(tracer, topic, group, 7, "process")
    _consume(tracer, topic, group, 8, "process")
    _consume(tracer, topic, group, 7, "process")  # after a rebalance: the same record again
    _consume(tracer, topic, "audit", 7, "process")  # another group reading it is normal
    provider.force_flush()
    provider.shutdown()
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=live_server.url, timeout=20) as client:
        while True:
            body = (await client.get("/api/health/events", params={"topic": topic})).json()
            if body["reprocessing"]["records"]:
                break
            assert time.monotonic() < deadline, body["reprocessing"]
            await asyncio.sleep(0.5)
        page = (await client.get("/health/events", params={"topic": topic})).text
    found = body["reprocessing"]["records"]
    assert [(r["group"], r["offset"], r["operation"], r["times"]) for r in found] == [
        (group, 7, "process", 2)
    ]
    assert all(span["service"] == "billing" for span in found[0]["spans"])
    assert found[0]["spans"][0]["link"].startswith("/trace/")
    assert f'data-group="{group}"' in page
    rule = rule_from_mapping({"name": "Reprocessed", "kind": "duplicate_processing",
                              "topic": topic, "window": "10m"})  # fmt: skip
    with live_server.engine.connect() as connection:
        fired = samples(connection, rule, int(time.time() * 1000), Probes())
    assert [dict(s.labels) for s in fired] == [{"group": group, "topic": topic}]
    assert f"{group} processed 1 record of {topic}" in fired[0].description
