"""Every page of the console on the demo shop's traffic, in Chromium.

Each page must render (HTTP 200, its heading, no script error, no dialog), and its
screenshot is written to docs/screenshots/ for the user guide (docs/guide/pages.md).
Screenshots are build output: git ignores them.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from collectors.index.engine import create_index_engine
from console.app import create_app
from console.demo.flows import Odds, SlowPace
from console.demo.runner import CLUSTER_NAME, DemoOptions, demo_settings
from console.demo.shop import Shop
from tests.conftest import serve_in_thread, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ODDS = Odds(out_of_stock=0.05, card_declined=0.2, gateway_timeout=0.5,
            carrier_failure=0.1, retry_backoff_s=0.1)  # fmt: skip


async def _traffic(client: httpx.AsyncClient, shop: Shop, prefix: str) -> dict[str, str]:
    """Wait until every page has something to show; return the ids the pages need."""
    correlation_id = await asyncio.wait_for(asyncio.shield(shop.first_completed), 30)

    async def first_event() -> dict[str, Any] | None:
        answer = await client.get("/api/events", params={"correlation_id": correlation_id})
        events = answer.json().get("events", [])
        return events[-1] if events else None

    event = await wait_until(first_event, timeout_s=40)

    async def compensated_saga() -> str | None:
        sagas = (await client.get("/api/sagas", params={"status": "compensated"})).json()
        return sagas["sagas"][0]["saga_id"] if sagas.get("sagas") else None

    saga_id = await wait_until(compensated_saga, timeout_s=40)

    async def dead_letter() -> dict[str, Any] | None:
        dlqs = (await client.get("/api/dlq")).json()["dlqs"]
        if not dlqs:
            return None
        topic = dlqs[0]["topic"]
        messages = (await client.get(f"/api/dlq/{CLUSTER_NAME}/{topic}")).json()["messages"]
        return messages[0] if messages else None

    letter = await wait_until(dead_letter, timeout_s=40)

    async def lagging_group() -> bool:
        groups = (await client.get("/api/groups")).json()["groups"]
        return any(g["group"] == f"{prefix}-notification" for g in groups)

    await wait_until(lagging_group, timeout_s=40)
    return {
        "correlation_id": correlation_id,
        "event": f"{event['cluster']}/{event['topic']}/{event['partition']}/{event['offset']}",
        "topic": event["topic"],
        "saga_id": saga_id,
        "dlq_topic": letter["topic"],
        "dlq_message": f"{letter['topic']}/{letter['partition']}/{letter['offset']}",
        "group": f"{prefix}-notification",
    }


def _pages(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """(screenshot name, path, text the page must show)."""
    cluster = CLUSTER_NAME
    return [
        ("events", "/events", "Events"),
        ("events-by-correlation-id", f"/events?correlation_id={quote(ids['correlation_id'])}",
         "Events"),
        ("event-detail", f"/events/{ids['event']}", ids["topic"]),
        ("trace", f"/trace/{quote(ids['correlation_id'])}", "Trace"),
        ("lineage", f"/lineage/{ids['event']}", "Lineage"),
        ("topology", "/topology", "Topology"),
        ("groups", "/groups", "Consumer groups"),
        ("group", f"/groups/{ids['group']}?cluster={cluster}", ids["group"]),
        ("dlq", "/dlq", "Dead-letter queues"),
        ("dlq-topic", f"/dlq/{cluster}/{ids['dlq_topic']}", ids["dlq_topic"]),
        ("dlq-message", f"/dlq/{cluster}/{ids['dlq_message']}", ids["dlq_topic"]),
        ("actions", "/actions", "Redrive and replay jobs"),
        ("sagas", "/sagas", "Sagas"),
        ("saga", f"/sagas/{quote(ids['saga_id'])}?cluster={cluster}", "Saga"),
        ("alerts", "/alerts", "Alerts"),
        ("alert-rules", "/alerts/rules", "Alert rules"),
        ("alert-receivers", "/alerts/receivers", "Receivers"),
        ("clusters", "/clusters", "Clusters"),
        ("topics", f"/clusters/{cluster}", "Topics"),
        ("topic", f"/clusters/{cluster}/topics/{ids['topic']}", ids["topic"]),
        ("admin", "/admin", "Administration"),
        ("admin-masking", "/admin/masking", "Data masking"),
        ("audit", "/audit", "Audit log"),
    ]  # fmt: skip


async def test_every_page_renders_the_demo_traffic(kafka_bootstrap: str, tmp_path: Path, page):
    prefix = f"t-guide-{uuid.uuid4().hex[:8]}"
    options = DemoOptions(index_url=f"sqlite:///{tmp_path / 'guide.db'}", topic_prefix=prefix)
    settings = demo_settings(kafka_bootstrap, options)
    engine = create_index_engine(settings.index.url)
    SCREENSHOTS.mkdir(exist_ok=True)
    with serve_in_thread(create_app(settings, mode="all", engine=engine)) as url:
        shop = Shop(kafka_bootstrap, f"{url}/v1/traces", prefix=prefix, rate=10, seed=5,
                    odds=ODDS, pace=SlowPace(slow_delay_s=0.4))  # fmt: skip
        await shop.start()
        try:
            async with httpx.AsyncClient(base_url=url, timeout=15) as client:
                ids = await _traffic(client, shop, prefix)
            await page.set_viewport_size({"width": 1400, "height": 900})
            for name, path, expected in _pages(ids):
                answer = await page.goto(url + path)
                assert answer is not None and answer.status == 200, (path, answer)
                await page.wait_for_load_state("networkidle")
                heading = await page.inner_text("h1")
                assert expected in heading, (path, expected, heading)
                await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
            assert page.problems == []
        finally:
            await shop.stop()
    engine.dispose()
