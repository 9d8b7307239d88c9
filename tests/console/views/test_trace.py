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

from collectors import traces
from collectors.index.writer import write_batch
from tests.collectors.trace_fixtures import BASE_NS, event_row, index_rows, span
from tests.console.api_shapes import shape_problems
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
    # A link inside a row's summary would be a control inside a control: the row opens
    # (its summary), and its details link to the record.
    record_row = page.locator(f'.tl-row[data-event="{topic1}/0/0"]')
    await record_row.locator("summary").click()
    await record_row.locator("a.tl-record-link").click()
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


# --- a long flow: two bursts of work 17.2 s apart, seven services, a dead letter at the end ---

SCALED_SERVICES = ("checkout", "orders", "inventory", "payments", "shipping", "notices", "dlq-desk")
SECOND_BURST_MS = 17_550  # the first burst ends at 350 ms: 17.2 s of nothing between them
EVENT_TYPES = ("OrderPlaced", "StockReserved")
# The Problems list shows a dead letter's error class: one word wider than a phone.
LONG_WORD = "org.springframework.kafka.listener.ListenerExecutionFailedException"


@dataclass
class ScaledFlow:
    correlation: str
    topic: str
    rows: int


_SCALED: dict[str, ScaledFlow] = {}


def scaled_flow(live_server) -> ScaledFlow:  # type: ignore[no-untyped-def]
    """Per service: a span of 80 ms with two shorter ones inside, and two records."""
    if "flow" in _SCALED:
        return _SCALED["flow"]
    run = uuid.uuid4().hex[:8]
    correlation, topic, trace_id = f"scale-{run}", f"t-scale-{run}", uuid.uuid4().hex
    base = int(time.time() * 1000) - 60_000 - BASE_NS // 1_000_000  # recent: kept by retention
    spans, rows = [], []
    for k, service in enumerate(SCALED_SERVICES):
        start = base + (90 * k if k < 4 else SECOND_BURST_MS + 90 * (k - 4))
        ids = [f"{k:02x}{n:02x}{run}{'0' * 4}" for n in range(3)]
        for span_id, (at, length) in zip(ids, [(0, 80), (10, 30), (50, 30)], strict=True):
            spans.append(span(trace_id, span_id, name=f"handle {service} {at}", service=service,
                              start_ms=start + at, duration_ms=length))  # fmt: skip
        for n, at in enumerate((20, 70)):
            dead = service == "dlq-desk" and n == 1
            rows.append(event_row(
                topic, 2 * k + n, cluster="local", ts_ms=start + at, correlation_id=correlation,
                trace_id=trace_id, span_id=ids[1 + n], source=service,
                event_type="PaymentFailed" if dead else EVENT_TYPES[n],
                is_dlq=dead, dlq_error_class=LONG_WORD if dead else None,
            ))  # fmt: skip
    index_rows(live_server.engine, rows)
    traces.store_spans(live_server.engine, spans, int(time.time() * 1000))
    _SCALED["flow"] = ScaledFlow(correlation, topic, len(rows) + len(spans))
    return _SCALED["flow"]


async def test_the_json_twin_has_event_types_gaps_ticks_and_the_zoom(live_server) -> None:
    flow = await asyncio.to_thread(scaled_flow, live_server)
    url = f"{live_server.url}/api/trace/{flow.correlation}"
    body = httpx.get(url).json()
    records = [i for s in body["services"] for i in s["items"] if i["kind"] == "record"]
    assert [r["event_type"] for r in records[:2]] == ["OrderPlaced", "StockReserved"]
    assert records[0]["label"] == "OrderPlaced"
    assert [(g["idle_ms"], g["offset_ms"], g["label"]) for g in body["gaps"]] == [
        (17_200.0, 350.0, "⋯ 17.2 s idle ⋯")
    ]
    assert len(body["ticks"]) >= 6 and body["window"] is None
    assert shape_problems(f"/api/trace/{flow.correlation}", 200, body) == []
    zoomed = httpx.get(url, params={"from_ms": 0, "to_ms": 200}).json()
    assert shape_problems(f"/api/trace/{flow.correlation}", 200, zoomed) == []
    assert zoomed["window"] == {"from_ms": 0.0, "to_ms": 200.0, "shown_rows": 13,
                                "total_rows": flow.rows}  # fmt: skip
    assert [s["service"] for s in zoomed["services"]] == ["checkout", "orders", "inventory"]
    assert zoomed["gaps"] == [] and zoomed["ticks"] != body["ticks"]
    assert httpx.get(url, params={"from_ms": 5}).status_code == 400
    assert httpx.get(url, params={"from_ms": 9, "to_ms": 3}).status_code == 400
    assert httpx.get(url, params={"from_ms": "nan", "to_ms": 3}).status_code == 400


async def _open_scaled(page, live_server, width: int, query: str = "") -> ScaledFlow:  # type: ignore[no-untyped-def]
    flow = await asyncio.to_thread(scaled_flow, live_server)
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"{live_server.url}/trace/{flow.correlation}{query}")
    await page.locator("#trace-timeline[data-ready='1']").wait_for()
    return flow


@pytest.mark.browser
async def test_a_record_row_shows_its_event_type_and_the_axis_has_round_ticks(
    live_server, page
) -> None:
    flow = await _open_scaled(page, live_server, 1440)
    row = page.locator(f'.tl-row[data-event="{flow.topic}/0/0"] > summary')
    assert (await row.locator(".tl-record-label").inner_text()) == "OrderPlaced"
    assert (await row.locator(".tl-where").inner_text()) == f"{flow.topic} [0] @0"
    labels = await page.locator("#trace-axis .tl-tick").all_inner_texts()
    assert len(labels) >= 6, labels
    assert all(label.endswith((" ms", " s", " min")) for label in labels), labels
    # a click on a row (not a drag) still opens it
    await page.locator(f'.tl-row[data-event="{flow.topic}/0/1"] .tl-lane').click()
    assert await page.locator(f'.tl-row[data-event="{flow.topic}/0/1"][open]').count() == 1
    assert page.problems == []


@pytest.mark.browser
async def test_a_long_idle_gap_is_collapsed_and_labelled(live_server, page) -> None:
    await _open_scaled(page, live_server, 1440)
    gap = page.locator("#trace-axis .tl-axis-gap")
    assert await gap.count() == 1
    assert (await gap.inner_text()) == "⋯ 17.2 s idle ⋯"
    axis = await page.locator("#trace-axis").bounding_box()
    gap_box = await gap.bounding_box()
    bar = await page.locator(".tl-span .tl-bar").first.bounding_box()  # 80 ms of 17 810 ms
    assert axis and gap_box and bar
    assert gap_box["width"] <= 0.06 * axis["width"]
    assert bar["width"] > 20 * axis["width"] * 80 / 17_810  # 0.45 % without the collapse


@pytest.mark.browser
async def test_dragging_across_the_axis_zooms_and_reset_restores(live_server, page) -> None:
    flow = await _open_scaled(page, live_server, 1440)
    rows = page.locator("#trace-rows .tl-row")
    assert await rows.count() == flow.rows
    before = await page.locator("#trace-axis .tl-tick").all_inner_texts()
    assert await page.locator("#trace-reset-zoom").count() == 0
    await page.locator("#trace-axis").scroll_into_view_if_needed()
    axis = await page.locator("#trace-axis").bounding_box()
    assert axis
    y = axis["y"] + axis["height"] / 2
    await page.mouse.move(axis["x"] + 0.01 * axis["width"], y)
    await page.mouse.down()
    await page.mouse.move(axis["x"] + 0.2 * axis["width"], y, steps=5)
    await page.mouse.up()
    await page.wait_for_url("**from_ms=*")
    await page.locator("#trace-timeline[data-ready='1']").wait_for()
    assert 0 < await rows.count() < flow.rows
    assert await page.locator("#trace-axis .tl-tick").all_inner_texts() != before
    await page.locator("#trace-reset-zoom").click()
    await page.wait_for_url(f"**/trace/{flow.correlation}")
    assert await rows.count() == flow.rows
    assert page.problems == []


# Groups of rows outside the document, or clipped by a box that scrolls or hides its overflow.
HIDDEN_GROUPS = """() => [...document.querySelectorAll('#trace-rows .tl-group')].flatMap((g) => {
    const problems = [];
    const bottom = g.getBoundingClientRect().bottom + window.scrollY;
    if (g.offsetHeight === 0 || bottom > document.documentElement.scrollHeight)
        problems.push(g.dataset.service + ': outside the document');
    for (let el = g.parentElement; el; el = el.parentElement) {
        const clips = /(auto|scroll|hidden)/.test(getComputedStyle(el).overflowY);
        if (clips && el.scrollHeight > el.clientHeight + 1)
            problems.push(g.dataset.service + ': clipped by ' + el.tagName + '.' + el.className);
    }
    return problems;
})"""


@pytest.mark.browser
async def test_a_range_typed_in_zooms_without_the_mouse(live_server, page) -> None:
    flow = await _open_scaled(page, live_server, 1440)
    await page.locator("#trace-zoom-typed > summary").click()
    await page.fill("#trace-zoom-typed input[name=from_ms]", "17500")
    await page.fill("#trace-zoom-typed input[name=to_ms]", "17700")
    await page.locator("#trace-zoom-typed button[type=submit]").click()
    await page.wait_for_url("**to_ms=17700")
    services = await page.locator("#trace-rows .tl-group").evaluate_all(
        "(groups) => groups.map((g) => g.dataset.service)"
    )
    assert services == ["shipping", "notices"]
    assert "of 7 services" in await page.inner_text("#trace-zoom-range")
    assert await page.locator("#trace-reset-zoom").is_visible()
    assert await page.locator("#trace-rows .tl-row").count() < flow.rows
    assert page.problems == []


@pytest.mark.browser
async def test_every_service_is_on_the_page_without_an_inner_scroll_box(live_server, page) -> None:
    await _open_scaled(page, live_server, 1440)
    hidden = await page.evaluate(HIDDEN_GROUPS)
    assert hidden == []
    names = await page.locator("#trace-rows .tl-group").evaluate_all(
        "(groups) => groups.map((g) => g.dataset.service)"
    )
    assert names == list(SCALED_SERVICES)
    dead_letter = page.locator("#trace-rows .tl-dlq")
    await dead_letter.scroll_into_view_if_needed()
    assert await dead_letter.is_visible()


@pytest.mark.browser
async def test_a_phone_wide_page_never_scrolls_sideways(live_server, page) -> None:
    for query in ("", "?from_ms=0&to_ms=200"):
        await _open_scaled(page, live_server, 390, query)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (query, overflow)
        label = await page.locator(".tl-span .tl-label").first.bounding_box()
        lane = await page.locator(".tl-span .tl-lane").first.bounding_box()
        assert label and lane and label["y"] + label["height"] <= lane["y"] + 1  # label above
    assert page.problems == []
