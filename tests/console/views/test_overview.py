"""The on-call overview and the search box, on a live console with real traffic."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import wait_until
from tests.console.actions.helpers import spring_headers
from tests.kafka_helpers import create_topic, produce


async def wait_until_found(url: str, query: str) -> dict:
    async with httpx.AsyncClient(timeout=20) as client:

        async def found() -> dict | None:
            body = (await client.get(f"{url}/api/search", params={"q": query})).json()
            return body if body["link"] else None

        return await wait_until(found)


async def test_the_search_box_goes_where_an_id_points(
    live_server, kafka_bootstrap, unique_topic
) -> None:
    await create_topic(kafka_bootstrap, unique_topic)
    headers = [("correlation_id", f"corr-{unique_topic}".encode()),
               ("ce_id", f"evt-{unique_topic}".encode())]  # fmt: skip
    await produce(kafka_bootstrap, unique_topic, [(b"k", b"{}", headers)])
    found = await wait_until_found(live_server.url, f"corr-{unique_topic}")
    assert found == {"query": f"corr-{unique_topic}", "kind": "correlation",
                     "link": f"/trace/corr-{unique_topic}"}  # fmt: skip
    by_event = await wait_until_found(live_server.url, f"evt-{unique_topic}")
    assert by_event["kind"] == "event" and by_event["link"].endswith(f"/{unique_topic}/0/0")
    by_coordinates = await wait_until_found(live_server.url, f"{unique_topic}/0@0")
    assert by_coordinates["link"] == by_event["link"]
    by_topic = await wait_until_found(live_server.url, unique_topic)
    assert by_topic["kind"] == "topic"
    assert (await wait_until_found(live_server.url, "ab" * 16))["kind"] == "trace"
    nothing = httpx.get(f"{live_server.url}/search", params={"q": "no-such-thing-anywhere"})
    assert nothing.status_code == 404 and 'id="text-search"' in nothing.text
    assert httpx.get(f"{live_server.url}/api/search", params={"q": "x" * 1001}).status_code == 400


@pytest.mark.browser
async def test_home_search_box_reaches_a_correlation_in_two_actions(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    """The on-call journey: paste a correlation id into the box on the overview, land on
    its trace. The overview also lists the dead letters of the last hour."""
    await create_topic(kafka_bootstrap, unique_topic)
    dlt = f"{unique_topic}-dlt"
    await create_topic(kafka_bootstrap, dlt)
    correlation = f"corr-home-{unique_topic}"
    await produce(
        kafka_bootstrap, unique_topic, [(b"k", b"{}", [("correlation_id", correlation.encode())])]
    )
    await produce(kafka_bootstrap, dlt, [(b"k", b"{}", spring_headers(unique_topic, 0, 0))])
    await wait_until_found(live_server.url, correlation)
    await wait_until_found(live_server.url, dlt)

    await page.goto(f"{live_server.url}/")
    assert dlt in await page.locator("#overview-dlq").inner_text()
    await page.fill("#overview-search input[name=q]", correlation)  # action 1
    await page.press("#overview-search input[name=q]", "Enter")  # action 2
    await page.wait_for_url(f"**/trace/{correlation}")
    assert correlation in await page.locator("h1").inner_text()
    overview = httpx.get(f"{live_server.url}/api/overview", timeout=20).json()
    assert any(d["topic"] == dlt for d in overview["dlq_last_hour"])
    assert page.problems == []
