"""A tour of every console page on the demo shop's traffic, for the guide's screenshots
(scripts/screenshots.py) and the tests that every page renders and the shop fills them
(tests/console/test_guide_screenshots.py, tests/console/demo/test_shop.py).

`running_demo` runs the demo's console and a brisk shop in this event loop;
`wait_for_traffic` waits until each page has something to show and returns the ids the
pages need; `pages` lists (name, path, text the heading must show).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import uvicorn

from collectors.index.engine import create_index_engine
from console.app import create_app
from console.demo.flows import Odds, SlowPace
from console.demo.runner import CLUSTER_NAME, DemoOptions, demo_settings
from console.demo.shop import Shop

# Failures often enough that a short run has compensations, retries and dead letters.
TOUR_ODDS = Odds(out_of_stock=0.05, card_declined=0.2, gateway_timeout=0.5,
                 carrier_failure=0.1, retry_backoff_s=0.1)  # fmt: skip
TOUR_PACE = SlowPace(slow_delay_s=0.4)

T = TypeVar("T")


class _QuietServer(uvicorn.Server):
    """uvicorn inside a running loop: whoever runs the loop owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def running_demo(
    bootstrap: str,
    folder: Path,
    prefix: str,
    port: int,
    seed: int = 5,
    registry_url: str | None = None,
    connect_url: str | None = None,
    odds: Odds = TOUR_ODDS,
) -> AsyncIterator[tuple[str, Shop]]:
    """The demo's console (index in `folder`) on 127.0.0.1:`port` and a shop placing ten
    orders a second with frequent failures (`odds`), its payment commands in Avro when a
    registry is given; (console URL, shop). Both stop on the way out."""
    options = DemoOptions(port=port, index_url=f"sqlite:///{folder / 'demo.db'}",
                          topic_prefix=prefix)  # fmt: skip
    settings = demo_settings(bootstrap, options, registry_url, connect_url)
    engine = create_index_engine(settings.index.url)
    app = create_app(settings, mode="all", engine=engine)
    server = _QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                raise RuntimeError(f"the demo console did not start on port {port}")
            await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        shop = Shop(bootstrap, f"{url}/v1/traces", prefix=prefix, rate=10, seed=seed,
                    odds=odds, pace=TOUR_PACE, registry_url=registry_url)  # fmt: skip
        await shop.start()
        try:
            yield url, shop
        finally:
            await shop.stop()
    finally:
        server.should_exit = True
        await serving
        engine.dispose()


@dataclass(frozen=True)
class TourIds:
    correlation_id: str
    event: str  # cluster/topic/partition/offset
    topic: str
    saga_id: str
    dlq_topic: str
    dlq_message: str  # topic/partition/offset
    group: str
    avro_event: str | None = None  # cluster/topic/partition/offset of a decoded Avro record
    subject: str | None = None  # its registry subject
    connector: str | None = None  # a Kafka Connect connector with a failed task


async def _until(check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise TimeoutError(f"no {what} after {timeout_s:.0f}s")


async def wait_for_traffic(
    client: httpx.AsyncClient, shop: Shop, prefix: str, timeout_s: float = 40
) -> TourIds:
    correlation_id = await asyncio.wait_for(asyncio.shield(shop.first_completed), timeout_s)

    async def first_event() -> dict[str, Any] | None:
        answer = await client.get("/api/events", params={"correlation_id": correlation_id})
        events = answer.json().get("events", [])
        return events[-1] if events else None

    async def compensated_saga() -> str | None:
        sagas = (await client.get("/api/sagas", params={"status": "compensated"})).json()
        return sagas["sagas"][0]["saga_id"] if sagas.get("sagas") else None

    async def dead_letter() -> dict[str, Any] | None:
        dlqs = (await client.get("/api/dlq")).json()["dlqs"]
        if not dlqs:
            return None
        topic = dlqs[0]["topic"]
        messages = (await client.get(f"/api/dlq/{CLUSTER_NAME}/{topic}")).json()["messages"]
        return messages[0] if messages else None

    group = f"{prefix}-notification"

    async def lagging_group() -> bool:
        groups = (await client.get("/api/groups")).json()["groups"]
        return any(g["group"] == group for g in groups)

    async def avro_record() -> dict[str, Any] | None:
        topic = shop.topics.payment_commands
        answer = await client.get("/api/events", params={"topic": topic, "limit": 5})
        decoded = [e for e in answer.json().get("events", []) if e["decode_state"] == "decoded"]
        return decoded[0] if decoded else None

    event = await _until(first_event, "indexed event", timeout_s)
    saga_id = await _until(compensated_saga, "compensated saga", timeout_s)
    letter = await _until(dead_letter, "dead letter", timeout_s)
    await _until(lagging_group, "consumer group", timeout_s)
    avro = (
        await _until(avro_record, "decoded Avro record", timeout_s) if shop.registry_url else None
    )
    return TourIds(
        correlation_id=correlation_id,
        event=f"{event['cluster']}/{event['topic']}/{event['partition']}/{event['offset']}",
        topic=event["topic"],
        saga_id=saga_id,
        dlq_topic=letter["topic"],
        dlq_message=f"{letter['topic']}/{letter['partition']}/{letter['offset']}",
        group=group,
        avro_event=(f"{avro['cluster']}/{avro['topic']}/{avro['partition']}/{avro['offset']}"
                    if avro else None),
        subject=f"{shop.topics.payment_commands}-value" if avro else None,
    )  # fmt: skip


def pages(ids: TourIds) -> list[tuple[str, str, str]]:
    """(screenshot name, path, text the page's heading must show)."""
    cluster = CLUSTER_NAME
    correlation = quote(ids.correlation_id)
    return [
        ("overview", "/", "Overview"),
        ("events", "/events", "Events"),
        ("events-by-correlation-id", f"/events?correlation_id={correlation}", "Events"),
        ("event-detail", f"/events/{ids.event}", ids.topic),
        ("trace", f"/trace/{correlation}", "Trace"),
        ("lineage", f"/lineage/{ids.event}", "Lineage"),
        ("topology", "/topology", "Topology"),
        ("catalog", "/catalog", "Event catalog"),
        ("catalog-type", f"/catalog/{cluster}/OrderPlaced", "OrderPlaced"),
        ("event-health", "/health/events", "Event health"),
        ("groups", "/groups", "Consumer groups"),
        ("group", f"/groups/{ids.group}?cluster={cluster}", ids.group),
        (
            "reset-offsets",
            f"/reset-offsets?cluster={cluster}&group={quote(ids.group)}&strategy=earliest",
            "Reset offsets",
        ),
        ("dlq", "/dlq", "Dead-letter queues"),
        ("dlq-topic", f"/dlq/{cluster}/{ids.dlq_topic}", ids.dlq_topic),
        ("dlq-message", f"/dlq/{cluster}/{ids.dlq_message}", ids.dlq_topic),
        ("actions", "/actions", "Redrive and replay jobs"),
        (
            "produce",
            f"/produce?cluster={cluster}&from={quote(ids.event.split('/', 1)[1])}",
            "Produce a record",
        ),
        ("sagas", "/sagas", "Sagas"),
        ("saga", f"/sagas/{quote(ids.saga_id)}?cluster={cluster}", "Saga"),
        ("alerts", "/alerts", "Alerts"),
        ("alert-rules", "/alerts/rules", "Alert rules"),
        ("alert-receivers", "/alerts/receivers", "Receivers"),
        ("clusters", "/clusters", "Clusters"),
        ("topics", f"/clusters/{cluster}", "Topics"),
        ("topic", f"/clusters/{cluster}/topics/{ids.topic}", ids.topic),
        ("topic-settings", f"/clusters/{cluster}/topics/{ids.topic}/settings", ids.topic),
        ("new-topic", f"/clusters/{cluster}/new-topic", "New topic"),
        ("acls", f"/clusters/{cluster}/acls", "ACLs"),
        ("brokers", f"/clusters/{cluster}/brokers", "Brokers"),
        ("admin", "/admin", "Administration"),
        ("admin-masking", "/admin/masking", "Data masking"),
        ("audit", "/audit", "Audit log"),
        *(
            [
                # scrolled to the decoded payload (the lineage graph fills the first screen)
                (
                    "event-avro",
                    f"/events/{ids.avro_event}#decode-state",
                    ids.avro_event.split("/")[1],
                ),
                ("schemas", "/schemas", "Schemas"),
                ("schema", f"/schemas/{cluster}/{quote(ids.subject)}", ids.subject),
            ]
            if ids.avro_event and ids.subject
            else []
        ),
        *(
            [
                ("connect", "/connect", "Kafka Connect"),
                ("connector", f"/connect/{cluster}/connect/connectors/{quote(ids.connector)}",
                 ids.connector),
            ]
            if ids.connector
            else []
        ),
    ]  # fmt: skip
