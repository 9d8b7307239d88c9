"""Topology map: learned from group assignments (no tracing), spans and dead letters; the
/api/topology twin and the drawn graph in the browser."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from starlette.testclient import TestClient

from collectors import topology, traces
from collectors.config import LagConfig
from collectors.kafka.lag import LagSampler
from console.app import create_app
from tests.collectors.trace_fixtures import BASE_NS, event_row, index_rows, span
from tests.conftest import make_settings
from tests.console.views.graph_checks import WATCH_CSP, csp_violations, graph_facts, own_console
from tests.kafka_helpers import create_topic, produce


def now_offset_ms() -> int:
    """trace_fixtures' time -> now (computed per test: a long session outlives a window)."""
    return int(time.time() * 1000) - BASE_NS // 1_000_000


@pytest.fixture
def api(index_db, kafka_cluster) -> Iterator[TestClient]:
    settings = make_settings(kafka_cluster, index_db.url)
    app = create_app(settings, mode="console", engine=index_db.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _edges(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["source"], e["target"]): e for e in body["edges"]}


async def test_a_consuming_group_is_a_topic_to_group_edge_without_tracing(
    index_db, kafka_cluster, api
) -> None:
    bootstrap = kafka_cluster.bootstrap
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"t-topo-{suffix}", f"g-topo-{suffix}"
    await create_topic(bootstrap, topic, partitions=2)
    await produce(bootstrap, topic, [(None, b"x", ())] * 3, partition=0)
    member = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        client_id=f"billing-{suffix}",
    )  # fmt: skip
    await member.start()
    sampler = LagSampler(kafka_cluster, index_db.engine, LagConfig(interval_s=0.5, window=4))
    try:
        deadline = time.monotonic() + 20
        while not member.assignment():
            assert time.monotonic() < deadline, "the consumer was never assigned its partitions"
            await member.getmany(timeout_ms=200)
        await member.commit({TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 0})
        await sampler.sample_once()  # one look, as the lag sampler service takes every interval
    finally:
        await sampler.stop()
        await member.stop()

    response = await asyncio.to_thread(api.get, "/api/topology", params={"window": 5})
    assert response.status_code == 200
    body = response.json()
    edge = _edges(body)[(f"topic:{topic}", f"group:{group}")]
    assert edge["kind"] == "consumed-by"
    assert edge["origins"] == ["assignments"]
    assert any(c.startswith(f"billing-{suffix}") for c in edge["consumers"])
    nodes = {n["id"]: n for n in body["nodes"]}
    group_node = nodes[f"group:{group}"]
    assert group_node["kind"] == "group"
    assert group_node["url"] == f"/groups/{group}?cluster={kafka_cluster.name}"
    assert group_node["lag"]["total_lag"] == 2
    assert nodes[f"topic:{topic}"]["url"] == f"/clusters/{kafka_cluster.name}/topics/{topic}"
    assert nodes[f"group:{group}"]["layer"] > nodes[f"topic:{topic}"]["layer"]


def test_spans_give_the_service_topic_group_service_chain(index_db, api) -> None:
    now = now_offset_ms()
    producer = dict(kind=traces.KIND_PRODUCER, topic="orders", partition=0, offset=0)
    consumer = dict(kind=traces.KIND_CONSUMER, topic="orders", partition=0, offset=0)
    traces.store_spans(index_db.engine, [
        span("a" * 32, "1" * 16, name="send orders", service="checkout", start_ms=now,
             **producer),
        span("a" * 32, "2" * 16, parent="1" * 16, name="process orders", service="billing",
             start_ms=now + 5, consumer_group="billing-group", **consumer),
        span("b" * 32, "3" * 16, name="process orders", service="billing", start_ms=now + 9,
             status=traces.STATUS_ERROR, consumer_group="billing-group", **consumer),
    ], 0)  # fmt: skip
    body = api.get("/api/topology", params={"window": 10}).json()
    edges = _edges(body)
    produced = edges[("service:checkout", "topic:orders")]
    consumed = edges[("topic:orders", "group:billing-group")]
    runs_in = edges[("group:billing-group", "service:billing")]
    assert [produced["kind"], consumed["kind"], runs_in["kind"]] == [
        "produces", "consumed-by", "runs-in",
    ]  # fmt: skip
    assert produced["origins"] == consumed["origins"] == ["spans"]
    assert consumed["count"] == 2 and consumed["error_rate"] == 0.5
    # Traffic began inside the 10-minute window: rates are over the minute since it began.
    assert body["rate_seconds"] == 60.0 and produced["rate_per_s"] == round(1 / 60, 4)
    layers = {n["id"]: n["layer"] for n in body["nodes"]}
    chain = ["service:checkout", "topic:orders", "group:billing-group", "service:billing"]
    assert [layers[n] for n in chain] == [0, 1, 2, 3]
    urls = {n["id"]: n["url"] for n in body["nodes"]}
    assert urls["service:checkout"] == "/events?source=checkout"


def test_headers_and_dead_letters_without_spans(index_db, api) -> None:
    now = now_offset_ms()
    dlt_headers = json.dumps([["kafka_dlt-original-consumer-group", "payments-group"]])
    rows = [event_row("payments", n, ts_ms=now + n, source="shop") for n in range(4)]
    rows.append(event_row(
        "payments-dlt", 0, ts_ms=now + 10, headers=dlt_headers, is_dlq=True,
        dlq_original_topic="payments", dlq_original_partition=0, dlq_original_offset=1,
    ))  # fmt: skip
    index_rows(index_db.engine, rows)
    body = api.get("/api/topology").json()
    edges = _edges(body)
    assert edges[("service:shop", "topic:payments")]["origins"] == ["headers"]
    assert edges[("service:shop", "topic:payments")]["count"] == 4
    failing = edges[("topic:payments", "group:payments-group")]
    assert failing["dead_letters"] == 1 and failing["error_rate"] == 1.0
    arrow = edges[("group:payments-group", "topic:payments-dlt")]
    assert arrow["kind"] == "dead-letter" and arrow["origins"] == ["dead letters"]


def test_layers_ignore_back_edges_of_cycles() -> None:
    graph = topology.Topology()
    a, t1 = graph.node("service", "a"), graph.node("topic", "t1")
    g, b = graph.node("group", "g"), graph.node("service", "b")
    for source, target in ((a, t1), (t1, g), (g, b), (b, t1)):  # b also feeds t1 back
        graph.edge(source, target).add("spans", 1)
    layers = topology.layers(graph)
    assert [layers[("service", "a")], layers[("topic", "t1")], layers[("group", "g")],
            layers[("service", "b")]] == [0, 1, 2, 3]  # fmt: skip


@pytest.mark.parametrize("window", ["x", "0", str(8 * 24 * 60)])
def test_a_bad_window_is_a_400(index_db, api, window: str) -> None:
    response = api.get("/api/topology", params={"window": window})
    assert response.status_code == 400
    assert "window" in response.text


@pytest.mark.browser
async def test_the_map_renders_and_a_topic_node_opens_its_page(
    live_server, kafka_bootstrap, page
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topic = f"t-topo-map-{suffix}"
    await create_topic(kafka_bootstrap, topic)  # empty: its rows are written below
    now = now_offset_ms()
    rows = [event_row(topic, n, cluster="local", ts_ms=now + n, source=f"svc-{suffix}")
            for n in range(3)]  # fmt: skip
    await asyncio.to_thread(index_rows, live_server.engine, rows)
    await page.goto(f"{live_server.url}/topology?window=30")
    graph = page.locator("#topology-graph[data-rendered='1']")
    await graph.wait_for()
    assert int(await graph.get_attribute("data-nodes") or "0") >= 2
    row = page.locator(f'#topology-edges tr[data-to="{topic}"]')
    assert await row.count() == 1
    await page.click("#topology .graph-fit")  # the session's other topics share the map
    await page.locator(f'#topology-graph a[data-node="topic:{topic}"]').click()
    await page.wait_for_url(f"**/clusters/local/topics/{topic}")
    assert page.problems == []
    api = httpx.get(f"{live_server.url}/api/topology", params={"window": 30}, timeout=60).json()
    assert any(n["id"] == f"topic:{topic}" for n in api["nodes"])


# The demo shop's topology (scripts/demo.sh): five services, ten topics, six groups.
DEMO_PRODUCES = {
    "order-service": ["orders", "inventory.commands", "payment.commands",
                      "payment.commands-retry", "payment.commands-dlt"],
    "inventory-service": ["checkout.replies", "inventory.events"],
    "payment-service": ["checkout.replies", "payments", "payment.commands-retry",
                        "payment.commands-dlt"],
    "shipping-service": ["shipments"],
    "notification-service": ["notifications"],
}  # fmt: skip
DEMO_CONSUMES = [  # (topic, group, service)
    ("checkout.replies", "order", "order-service"), ("payments", "order", "order-service"),
    ("inventory.commands", "inventory", "inventory-service"),
    ("shipments", "inventory", "inventory-service"),
    ("payment.commands", "payment", "payment-service"),
    ("shipments", "payment", "payment-service"),
    ("payment.commands-retry", "payment-retry", "payment-service"),
    ("orders", "shipping", "shipping-service"), ("orders", "notification", "notification-service"),
    ("shipments", "notification", "notification-service"),
]  # fmt: skip


def demo_spans(start_ms: int) -> list[traces.SpanRecord]:
    made = []
    for service, topics in DEMO_PRODUCES.items():
        for topic in topics:
            made.append((service, dict(kind=traces.KIND_PRODUCER, topic=f"shop.{topic}")))
    for topic, group, service in DEMO_CONSUMES:
        made.append((service, dict(kind=traces.KIND_CONSUMER, topic=f"shop.{topic}",
                                   consumer_group=f"shop-{group}")))  # fmt: skip
    return [
        span(f"{n:032x}", f"{n:016x}", service=service, start_ms=start_ms + n,
             status=traces.STATUS_ERROR if n % 7 == 0 else 0, partition=0, offset=n, **shape)
        for n, (service, shape) in enumerate(made, start=1)
    ]  # fmt: skip


@pytest.mark.browser
async def test_the_demo_map_is_readable_zooms_and_opens_a_node_without_a_csp_violation(
    tmp_path, page
) -> None:
    with own_console(tmp_path) as (url, engine):
        await asyncio.to_thread(traces.store_spans, engine, demo_spans(now_offset_ms()), 0)
        await page.add_init_script(WATCH_CSP)
        await page.set_viewport_size({"width": 1440, "height": 900})
        await page.goto(f"{url}/topology")
        facts = await graph_facts(page, "#topology-graph")
        assert facts["smallest_label_px"] >= 11, facts
        assert facts["fill"] >= 0.6, facts
        assert {"shop.payment.commands", "shop-payment-retry"} <= set(facts["labels"])
        assert await page.locator("#topology-graph a[data-node]").count() == 21 + 5  # 5 twice
        fitted = facts["scale"]
        await page.click("#topology .graph-zoom-in")
        zoomed = float(await page.get_attribute("#topology-graph", "data-scale") or 0)
        await page.click("#topology .graph-zoom-out")
        await page.click("#topology .graph-zoom-out")
        smaller = float(await page.get_attribute("#topology-graph", "data-scale") or 0)
        await page.click("#topology .graph-fit")
        back = float(await page.get_attribute("#topology-graph", "data-scale") or 0)
        assert zoomed > fitted > smaller and back == pytest.approx(fitted, rel=0.01)
        box = await page.locator("#topology-graph svg").bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.mouse.wheel(0, -300)
        wheeled = float(await page.get_attribute("#topology-graph", "data-scale") or 0)
        assert wheeled > back
        assert await csp_violations(page) == []

        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{url}/topology")
        narrow = await graph_facts(page, "#topology-graph")
        assert narrow["page_width"] <= narrow["window_width"], narrow  # no sideways scroll
        assert narrow["box_width"] <= 390 and narrow["smallest_label_px"] >= 11, narrow
        assert await csp_violations(page) == []

        await page.set_viewport_size({"width": 1440, "height": 900})
        await page.goto(f"{url}/topology")
        await page.locator("#topology-graph[data-rendered='1']").wait_for()
        await page.locator('#topology-graph a[data-node="group:shop-payment"]').click()
        await page.wait_for_url("**/groups/shop-payment")
        assert page.problems == []
