"""Trace and lineage end to end: the real OpenTelemetry SDK exporting OTLP/HTTP to the live
console, small services passing `traceparent` through real Kafka headers, the real tap.

Services: A -> topic1 -> B -> topic2 -> C, B also fans out to topic3, and a batch
consumer E takes topic2 and topic3 together (span links) and produces to topic4.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from collectors.index.writer import write_batch
from tests.collectors.trace_fixtures import event_row
from tests.kafka_helpers import create_topic


@dataclass
class Flow:
    correlation: str
    topics: dict[str, str]
    providers: list[TracerProvider] = field(default_factory=list)
    first: dict[str, Any] = field(default_factory=dict)


def _provider(url: str, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    return provider


def _headers(correlation: str) -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()] + [
        ("correlation_id", correlation.encode())
    ]


def _context(record: Any) -> Any:
    carrier = {k: v.decode() for k, v in record.headers or ()}
    return propagate.extract(carrier)


def _messaging(topic: str, partition: int, offset: int | None = None, **extra: Any) -> dict:
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        **extra,
    }
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    return attributes


async def _send(producer: AIOKafkaProducer, tracer: trace.Tracer, topic: str, flow: Flow,
                value: bytes) -> tuple[int, int]:  # fmt: skip
    with tracer.start_as_current_span(
        f"send {topic}", kind=SpanKind.PRODUCER, attributes=_messaging(topic, 0)
    ) as span:
        meta = await (await producer.send(topic, value, headers=_headers(flow.correlation)))
        span.set_attribute("messaging.kafka.offset", meta.offset)
    return meta.partition, meta.offset


async def _consume(bootstrap: str, topics: list[str], count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t, 0) for t in topics])
        await consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + 20
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for rs in batch.values() for r in rs]
        return records
    finally:
        await consumer.stop()


async def run_services(url: str, bootstrap: str) -> Flow:
    run = uuid.uuid4().hex[:8]
    topics = {n: f"t-otel-{n}-{run}" for n in ("topic1", "topic2", "topic3", "topic4")}
    for name in topics.values():
        await create_topic(bootstrap, name)
    flow = Flow(correlation=f"order-{run}", topics=topics)
    a, b, c, e = (_provider(url, f"svc-{s}-{run}") for s in "abce")
    flow.providers = [a, b, c, e]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # A: the origin
        with a.get_tracer("a").start_as_current_span("place order"):
            await _send(producer, a.get_tracer("a"), topics["topic1"], flow, b'{"order": 1}')
        # B: one record at a time, parent = the producer's context; fans out to 2 topics
        (record,) = await _consume(bootstrap, [topics["topic1"]], 1)
        tracer_b = b.get_tracer("b")
        with tracer_b.start_as_current_span(
            f"process {record.topic}", context=_context(record), kind=SpanKind.CONSUMER,
            attributes=_messaging(record.topic, record.partition, record.offset,
                                  **{"messaging.consumer.group.name": f"group-b-{run}"}),
        ):  # fmt: skip
            await _send(producer, tracer_b, topics["topic2"], flow, b'{"paid": true}')
            await _send(producer, tracer_b, topics["topic3"], flow, b'{"reserved": true}')
        # C: consumes topic2 and fails
        (record,) = await _consume(bootstrap, [topics["topic2"]], 1)
        with c.get_tracer("c").start_as_current_span(
            f"process {record.topic}", context=_context(record), kind=SpanKind.CONSUMER,
            attributes=_messaging(record.topic, record.partition, record.offset,
                                  **{"messaging.consumer.group.name": f"group-c-{run}"}),
        ) as span:  # fmt: skip
            span.set_status(Status(StatusCode.ERROR, "payment provider down"))
        # E: a batch consumer of topic2 and topic3, one span linking to both records
        records = await _consume(bootstrap, [topics["topic2"], topics["topic3"]], 2)
        tracer_e = e.get_tracer("e")
        links = [Link(trace.get_current_span(_context(r)).get_span_context()) for r in records]
        with tracer_e.start_as_current_span(
            "process batch", kind=SpanKind.CONSUMER, links=links,
            attributes={"messaging.system": "kafka", "messaging.batch.message_count": 2,
                        "messaging.consumer.group.name": f"group-e-{run}"},
        ):  # fmt: skip
            await _send(producer, tracer_e, topics["topic4"], flow, b'{"shipped": true}')
    finally:
        await producer.stop()
    for provider in flow.providers:
        provider.force_flush()
        provider.shutdown()
    return flow


async def _poll(url: str, ready: Any, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            response = await client.get(url)
            body = response.json() if response.status_code == 200 else None
            if (body is not None and ready(body)) or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.3)


_FLOW: dict[str, Flow] = {}


async def instrumented_flow(live_server, kafka_bootstrap) -> Flow:
    """The services run once per session; every test reads the same flow."""
    if "flow" not in _FLOW:
        flow = await run_services(live_server.url, kafka_bootstrap)
        body = await _poll(
            f"{live_server.url}/api/trace/{flow.correlation}",
            lambda b: b["record_count"] >= 4 and b["span_count"] >= 8,
        )
        assert body is not None, "the flow never appeared in the index"
        _FLOW["flow"] = flow
    return _FLOW["flow"]


async def test_the_timeline_has_every_record_and_span_grouped_by_service(
    live_server, kafka_bootstrap
) -> None:
    flow = await instrumented_flow(live_server, kafka_bootstrap)
    body = httpx.get(f"{live_server.url}/api/trace/{flow.correlation}").json()
    assert body["matched_by"] == "correlation_id"
    assert body["record_count"] == 4 and body["span_count"] == 8
    services = {s["service"].split("-")[1] for s in body["services"]}
    assert services == {"a", "b", "c", "e"}
    groups = {row["consumer_group"].split("-")[1] for row in body["consumer_latency"]}
    assert groups == {"b", "c", "e"}
    assert all(row["avg_ms"] >= 0 for row in body["consumer_latency"])
    problems = [p for p in body["problems"] if p["kind"] == "span"]
    assert [p["status_message"] for p in problems] == ["payment provider down"]
    page = httpx.get(f"{live_server.url}/trace/{flow.correlation}")
    assert page.status_code == 200 and "payment provider down" in page.text
    redirect = httpx.get(f"{live_server.url}/trace", params={"q": flow.correlation})
    assert redirect.status_code == 303
    assert redirect.headers["location"] == f"/trace/{flow.correlation}"
    assert httpx.get(f"{live_server.url}/api/trace/no-such-{uuid.uuid4()}").status_code == 404
    assert httpx.get(f"{live_server.url}/trace", params={"q": "x" * 2000}).status_code == 400


async def test_lineage_reconstructs_the_chain_fan_out_and_batch_consumer(
    live_server, kafka_bootstrap
) -> None:
    flow = await instrumented_flow(live_server, kafka_bootstrap)
    t = flow.topics
    url = f"{live_server.url}/api/lineage/local/{t['topic1']}/0/0"
    body = await _poll(url, lambda b: len(b["nodes"]) >= 4)
    by_id = {n["id"]: n["topic"] for n in body["nodes"]}
    edges = {(by_id[e["source"]], by_id[e["target"]], e["kind"]) for e in body["edges"]}
    assert edges == {
        (t["topic1"], t["topic2"], "trace"),
        (t["topic1"], t["topic3"], "trace"),
        (t["topic2"], t["topic4"], "trace"),
        (t["topic3"], t["topic4"], "trace"),
    }
    vias = {e["via"].split("-")[1] for e in body["edges"]}
    assert vias == {"b", "e"}
    failed = [n for n in body["nodes"] if n["failed"]]
    assert [n["topic"] for n in failed] == [t["topic2"]]
    layers = {n["topic"]: n["layer"] for n in body["nodes"]}
    assert layers == {t["topic1"]: 0, t["topic2"]: 1, t["topic3"]: 1, t["topic4"]: 2}
    up = httpx.get(f"{live_server.url}/api/lineage/local/{t['topic4']}/0/0").json()
    assert {n["topic"]: n["layer"] for n in up["nodes"]}[t["topic1"]] == -2
    topology = httpx.get(f"{live_server.url}/api/topology", params={"window": 60}).json()
    run = t["topic1"][-8:]
    by_pair = {(e["from"]["name"], e["to"]["name"]): e for e in topology["edges"]}
    assert (f"svc-a-{run}", t["topic1"]) in by_pair
    assert (f"group-b-{run}", f"svc-b-{run}") in by_pair
    group_c = by_pair[(t["topic2"], f"group-c-{run}")]
    assert group_c["error_rate"] == 1.0


@pytest.mark.browser
async def test_search_a_correlation_id_then_open_an_event_and_its_lineage(
    live_server, kafka_bootstrap, page
) -> None:
    flow = await instrumented_flow(live_server, kafka_bootstrap)
    await page.goto(f"{live_server.url}/events")
    await page.get_by_role("link", name="Trace", exact=True).click()
    await page.fill("#trace-q", flow.correlation)
    await page.click("#trace-search button[type=submit]")
    await page.wait_for_url(f"**/trace/{flow.correlation}")
    await page.locator("#trace-timeline[data-ready='1']").wait_for()
    assert await page.locator("#trace-rows .tl-span").count() == 8
    assert await page.locator("#trace-rows .tl-error").count() == 1
    assert await page.locator("#trace-latency tbody tr").count() == 3
    topic1 = flow.topics["topic1"]
    await page.locator(f'.tl-row[data-event="{topic1}/0/0"] a.tl-record-link').click()
    await page.wait_for_url(f"**/events/local/{topic1}/0/0")
    graph = page.locator("#lineage-graph[data-rendered='1']")
    await graph.wait_for()
    assert await graph.get_attribute("data-nodes") == "4"
    # click the node of topic4 (two layers to the right) and land on its event page
    topic4 = flow.topics["topic4"]
    await page.locator(f'#lineage-graph a[href="/events/local/{topic4}/0/0"]').click()
    await page.wait_for_url(f"**/events/local/{topic4}/0/0")
    await page.locator("#lineage-graph[data-rendered='1']").wait_for()
    assert page.problems == []


@pytest.mark.browser
async def test_a_lineage_graph_of_500_nodes_renders_every_node_and_edge(live_server, page) -> None:
    topic = f"t-wide-{uuid.uuid4().hex[:8]}"
    rows = [event_row(topic, 0, cluster="local", event_id=f"{topic}-root")]
    rows += [
        event_row(topic, n, cluster="local", ts_ms=n, causation_id=f"{topic}-root",
                  event_id=f"{topic}-{n}", is_dlq=n % 50 == 0)
        for n in range(1, 500)
    ]  # fmt: skip
    await asyncio.to_thread(write_batch, live_server.engine, "local", rows, {}, 0)
    await page.goto(f"{live_server.url}/lineage/local/{topic}/0/0")
    graph = page.locator("#lineage-graph[data-rendered='1']")
    await graph.wait_for()
    assert await graph.get_attribute("data-nodes") == "500"
    # How fast is measured by bench/lineage.py, not here: a shared CI machine is no stopwatch.
    assert await page.locator("#lineage-edges tbody tr").count() == 499
    assert page.problems == []
