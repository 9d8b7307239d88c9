"""The DLQ pages on a live console: listing, grouping, detail, and a one-click redrive."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.console.actions.helpers import header_map, read_topic, spring_headers
from tests.kafka_helpers import create_topic, produce


async def wait_for_dlq(url: str, topic: str, count: int) -> dict:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=20) as client:
        while time.monotonic() < deadline:
            body = (await client.get(f"{url}/api/dlq")).json()
            found = next((d for d in body["dlqs"] if d["topic"] == topic), None)
            if found and found["count"] >= count:
                return found
            await asyncio.sleep(0.3)
    raise AssertionError(f"{topic} was not indexed")


async def make_dlq(bootstrap: str, base: str) -> tuple[str, str]:
    original, dlt = f"{base}-orders", f"{base}-orders-dlt"
    await create_topic(bootstrap, original)
    await create_topic(bootstrap, dlt)
    await produce(bootstrap, dlt, [
        (b"k1", b'{"n": 1}', spring_headers(original, 0, 11)),
        (b"k2", b'{"n": 2}', spring_headers(original, 0, 12, error="OtherException")),
        (b"k3", b'{"n": 3}', spring_headers(original, 0, 13)),
    ])  # fmt: skip
    return original, dlt


async def test_dlq_api_counts_groups_and_details(live_server, kafka_bootstrap, unique_topic):
    original, dlt = await make_dlq(kafka_bootstrap, unique_topic)
    summary = await wait_for_dlq(live_server.url, dlt, 3)
    assert summary["cluster"] == "local"
    assert summary["oldest_age_s"] >= summary["newest_age_s"] >= 0
    body = httpx.get(f"{live_server.url}/api/dlq/local/{dlt}", timeout=20).json()
    assert body["total"] == 3
    errors = {g["error_class"]: g["count"] for g in body["by_error"]}
    assert errors == {"com.example.BoomException": 2, "com.example.OtherException": 1}
    assert body["by_original_topic"] == [{"original_topic": original, "count": 3}]
    assert body["messages"][0]["dlq"]["original_offset"] == 13
    only = httpx.get(
        f"{live_server.url}/api/dlq/local/{dlt}",
        params={"error_class": "com.example.OtherException"}, timeout=20,
    ).json()  # fmt: skip
    assert [m["offset"] for m in only["messages"]] == [1]
    detail = httpx.get(f"{live_server.url}/api/dlq/local/{dlt}/0/0", timeout=20).json()
    assert "Foo.bar" in detail["dlq"]["stacktrace"]
    assert detail["redrive"] is None
    missing = httpx.get(f"{live_server.url}/api/dlq/local/{dlt}/0/99", timeout=20)
    assert missing.status_code == 404
    bad = httpx.get(f"{live_server.url}/api/dlq/local/{dlt}/0/x", timeout=20)
    assert bad.status_code == 400


@pytest.mark.browser
async def test_click_redrive_confirm_see_it_done_and_find_it_on_the_original_topic(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    original, dlt = await make_dlq(kafka_bootstrap, unique_topic)
    await wait_for_dlq(live_server.url, dlt, 3)
    await page.goto(f"{live_server.url}/dlq")
    await page.get_by_role("link", name=dlt).click()
    await page.locator("#dlq-messages tr[data-offset='1'] a").first.click()
    assert "OtherException" in await page.locator("#dlq-error").inner_text()
    await page.locator("#redrive").click()
    assert await page.locator("#preview-count").inner_text() == "1"
    assert original in await page.locator("#preview-targets").inner_text()
    await page.locator("#confirm").click()
    await page.wait_for_url("**/actions/*")
    await page.locator("#job-status", has_text="done").wait_for(timeout=30_000)
    # The records table and the journal followed the job, without a reload.
    await page.locator('#job-items tr[data-state="sent"]').wait_for()
    assert "sent 1, skipped 0, failed 0 of 1" in await page.locator("#journal").inner_text()
    landed = await read_topic(kafka_bootstrap, original, 1)
    assert [(r.key, r.value) for r in landed] == [(b"k2", b'{"n": 2}')]
    headers = header_map(landed[0].headers)
    assert headers["eventscope-source-topic"] == dlt.encode()
    assert headers["eventscope-source-offset"] == b"1"
    # The DLQ record now says where it went.
    await page.goto(f"{live_server.url}/dlq/local/{dlt}/0/1")
    status = await page.locator("#redrive-status").inner_text()
    assert f"{original}/0@{landed[0].offset}" in status
    await page.click("#redrive-target")  # the copy it sent, one click away
    await page.wait_for_url(f"**/events/local/{original}/0/{landed[0].offset}")
    assert page.problems == []


async def wait_for_saga_status(url: str, saga_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=20) as client:
        while time.monotonic() < deadline:
            answer = await client.get(f"{url}/api/sagas/{saga_id}", params={"cluster": "local"})
            if answer.status_code == 200 and answer.json()["status"] == status:
                return
            await asyncio.sleep(0.3)
    raise AssertionError(f"saga {saga_id} never became {status}")


async def test_a_dead_letter_of_a_compensated_saga_warns_and_is_left_out_of_the_redrive(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    """The cancelled order must not be charged: redriving its old command re-runs a step
    after the saga ended, so the console says so and leaves it out unless asked."""
    bookings, dlt, saga_id = (
        f"{unique_topic}-bookings",
        f"{unique_topic}-bookings-dlt",
        f"trip-{unique_topic}",
    )
    await create_topic(kafka_bootstrap, bookings)
    await create_topic(kafka_bootstrap, dlt)
    saga = [("saga_id", saga_id.encode())]
    await produce(kafka_bootstrap, dlt, [(b"t", b"{}", [*spring_headers(bookings, 0, 3), *saga])])
    for event_type in ("TripBookingRequested", "FlightReserved", "HotelReserved", "PaymentFailed",
                       "HotelCancelled", "FlightCancelled"):  # fmt: skip
        await produce(
            kafka_bootstrap, bookings, [(b"t", b"{}", [("ce_type", event_type.encode()), *saga])]
        )
    await wait_for_dlq(live_server.url, dlt, 1)
    await wait_for_saga_status(live_server.url, saga_id, "compensated")

    detail = httpx.get(f"{live_server.url}/api/dlq/local/{dlt}/0/0", timeout=20).json()
    assert detail["saga"]["status"] == "compensated" and detail["saga"]["over"] is True
    await page.goto(f"{live_server.url}/dlq/local/{dlt}/0/0")
    assert "is over: it was compensated" in await page.locator("#saga-warning").inner_text()
    await page.locator("#redrive").click()
    assert "They are left out" in await page.locator("#saga-warning").inner_text()
    assert await page.locator("#preview-count").inner_text() == "0"
    assert await page.locator("#confirm").count() == 0
    await page.locator("input[name=include_ended_sagas]").check()
    await page.locator("#preview-form button").click()
    await page.wait_for_url("**include_ended_sagas=1**")
    assert await page.locator("#preview-count").inner_text() == "1"
    assert "are included" in await page.locator("#saga-warning").inner_text()
    assert await page.locator("#confirm").inner_text() == "Confirm redrive of 1 records"
    assert page.problems == []


async def test_the_dlq_page_keeps_up_without_a_reload_and_can_be_paused(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    first, second = f"{unique_topic}-a-dlt", f"{unique_topic}-b-dlt"
    for topic in (first, second):
        await create_topic(kafka_bootstrap, topic)
    await page.goto(f"{live_server.url}/dlq")
    assert "updated" in await page.locator(".refresh-age").inner_text()
    await produce(kafka_bootstrap, first, [(b"k", b"{}", spring_headers("orders", 0, 1))])
    await page.locator(f"#dlqs tr[data-topic='{first}']").wait_for(timeout=30_000)
    assert "updated" in await page.locator(".refresh-age").inner_text()

    await page.locator(".refresh-pause").check()
    await produce(kafka_bootstrap, second, [(b"k", b"{}", spring_headers("orders", 0, 2))])
    await wait_for_dlq(live_server.url, second, 1)
    await page.wait_for_timeout(11_000)  # one refresh period: nothing changes while paused
    assert await page.locator(f"#dlqs tr[data-topic='{second}']").count() == 0
    assert "paused" in await page.locator(".refresh-age").inner_text()
    await page.locator(".refresh-pause").uncheck()
    await page.locator(f"#dlqs tr[data-topic='{second}']").wait_for(timeout=30_000)
    assert page.problems == []
