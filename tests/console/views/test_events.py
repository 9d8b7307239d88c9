"""The events pages on the live console, fed by the real tap from the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from tests.kafka_helpers import create_topic, produce


async def wait_for_api(url: str, params: dict, expected: int, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            body = (await client.get(url, params=params)).json()
            if len(body.get("events", [])) >= expected or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.3)


async def test_search_api_finds_a_correlation_id_across_topics(
    live_server, kafka_bootstrap, unique_topic
) -> None:
    correlation = f"corr-{uuid.uuid4().hex[:8]}"
    second = f"{unique_topic}-b"
    await create_topic(kafka_bootstrap, unique_topic)
    await create_topic(kafka_bootstrap, second)
    await produce(
        kafka_bootstrap,
        unique_topic,
        [(b"k1", b'{"a": 1}', [("correlation_id", correlation.encode())])],
    )
    await produce(
        kafka_bootstrap, second, [(b"k2", b'{"b": 2}', [("correlationId", correlation.encode())])]
    )
    body = await wait_for_api(f"{live_server.url}/api/events", {"correlation_id": correlation}, 2)
    assert sorted(e["topic"] for e in body["events"]) == sorted([unique_topic, second])
    event = body["events"][0]
    detail = httpx.get(live_server.url + event["links"]["self"]).json()
    assert detail["headers"][0][1] == correlation
    assert detail["value"]["text"] in ('{"a": 1}', '{"b": 2}')


def test_bad_search_input_is_a_400_naming_the_field(live_server) -> None:
    response = httpx.get(f"{live_server.url}/api/events", params={"limit": "lots"})
    assert response.status_code == 400
    assert response.json()["field"] == "limit"
    page = httpx.get(f"{live_server.url}/events", params={"time_from": "soon"})
    assert page.status_code == 200 and "time_from" in page.text
    missing = httpx.get(f"{live_server.url}/api/events/local/nope/0/0")
    assert missing.status_code == 404
    bad = httpx.get(f"{live_server.url}/events/local/nope/x/0")
    assert bad.status_code == 400


@pytest.mark.browser
async def test_search_then_open_the_event_detail(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    correlation = f"corr-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_bootstrap, unique_topic)
    await produce(
        kafka_bootstrap,
        unique_topic,
        [
            (
                b"order-7",
                b'{"orderId": 7, "items": ["<script>alert(1)</script>"]}',
                [
                    ("x-correlation-id", correlation.encode()),
                    ("ce_type", b"OrderPlaced"),
                    ("<img src=x onerror=alert(2)>", b"\xff\xfe"),
                ],
            ),
        ],
    )
    await wait_for_api(f"{live_server.url}/api/events", {"correlation_id": correlation}, 1)
    await page.goto(f"{live_server.url}/events")
    await page.fill("input[name=correlation_id]", correlation)
    await page.click("button[type=submit]")
    row = page.locator(f'tr[data-event="{unique_topic}/0/0"]')
    await row.wait_for()
    assert "OrderPlaced" in await row.inner_text()
    await row.locator("a").first.click()
    await page.wait_for_url(f"**/events/local/{unique_topic}/0/0")
    assert await page.locator("#payload[data-kind=json] .j-key").first.inner_text() == '"orderId"'
    headers = await page.locator("#headers tbody tr").all_inner_texts()
    assert any("<img src=x onerror=alert(2)>" in h for h in headers)
    assert any("0xfffe" in h for h in headers)
    await page.click("#correlation-link")
    await page.wait_for_url("**/events?correlation_id=*")
    await page.locator(f'tr[data-event="{unique_topic}/0/0"]').wait_for()
    assert page.problems == []


@pytest.mark.browser
async def test_live_tail_shows_new_events_without_reload(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    await create_topic(kafka_bootstrap, unique_topic)
    await page.goto(f"{live_server.url}/events?topic={unique_topic}")
    await page.check("#live-tail")
    await page.locator("#tail-status").filter(has_text="following").wait_for()
    await produce(kafka_bootstrap, unique_topic, [(b"tail-1", b'{"n": 1}', [])])
    await page.locator(f'tr[data-event="{unique_topic}/0/0"]').wait_for(timeout=20_000)
    # Paused, nothing arrives; resumed, what came meanwhile arrives too.
    await page.uncheck("#live-tail")
    await page.locator("#tail-status").filter(has_text="paused").wait_for()
    await produce(kafka_bootstrap, unique_topic, [(b"tail-2", b'{"n": 2}', [])])
    await asyncio.sleep(3)
    assert await page.locator(f'tr[data-event="{unique_topic}/0/1"]').count() == 0
    await page.check("#live-tail")
    await page.locator(f'tr[data-event="{unique_topic}/0/1"]').wait_for(timeout=20_000)
    assert await page.locator("#event-rows tr").count() == 2
    assert page.problems == []
