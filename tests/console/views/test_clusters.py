import asyncio

import httpx
import pytest

from collectors.config import settings_from_mapping
from tests.kafka_helpers import create_topic


def test_health_and_readiness(live_server) -> None:
    assert httpx.get(f"{live_server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live_server.url}/readyz", timeout=20)
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["index"] == {"ready": True, "error": None, "backend": "sqlite"}
    assert body["clusters"]["local"]["ready"] is True
    tap = body["services"]["tap[local]"]
    assert tap["running"] is True and tap["last_error"] is None
    assert set(body["services"]) >= {"tap[local]", "lag[local]", "retention", "alert-evaluator"}


def test_the_home_page_shows_each_services_state(live_server) -> None:
    page = httpx.get(f"{live_server.url}/clusters", timeout=20).text
    assert 'data-service="tap[local]"' in page and "running" in page


async def test_topics_api_lists_partitions_and_offsets(
    live_server, kafka_bootstrap, unique_topic
) -> None:
    await create_topic(kafka_bootstrap, unique_topic, partitions=4)
    topic = None
    for _ in range(50):  # topic metadata reaches the broker's cache shortly after creation
        body = httpx.get(f"{live_server.url}/api/clusters/local", timeout=20).json()
        topic = next((t for t in body["topics"] if t["name"] == unique_topic), None)
        if topic:
            break
        await asyncio.sleep(0.2)
    assert topic is not None
    assert topic["partition_count"] == 4
    assert [p["end_offset"] for p in topic["partitions"]] == [0, 0, 0, 0]
    detail = httpx.get(f"{live_server.url}/api/clusters/local/topics/{unique_topic}", timeout=20)
    assert detail.json()["name"] == unique_topic


def test_unknown_cluster_and_topic_are_404_with_a_message(live_server) -> None:
    response = httpx.get(f"{live_server.url}/api/clusters/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    response = httpx.get(f"{live_server.url}/api/clusters/local/topics/no-such-topic", timeout=20)
    assert response.status_code == 404
    page = httpx.get(f"{live_server.url}/clusters/nope")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]


@pytest.mark.browser
async def test_a_topic_created_with_aiokafka_appears_on_the_topics_page(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    await create_topic(kafka_bootstrap, unique_topic, partitions=2)
    await page.goto(f"{live_server.url}/clusters")
    await page.get_by_role("link", name="local", exact=True).click()
    row = page.locator(f'tr[data-topic="{unique_topic}"]')
    await row.wait_for()
    assert await row.locator("td").nth(1).inner_text() == "2"
    await page.fill("#topic-query", unique_topic)
    await page.wait_for_function("() => document.querySelectorAll('#topics tbody tr').length === 1")
    await row.get_by_role("link", name=unique_topic).click()
    await page.wait_for_url(f"**/topics/{unique_topic}")
    assert await page.locator("#partitions tbody tr").count() == 2
    assert page.problems == []


def test_topics_in_the_navigation_opens_the_only_clusters_topics(live_server) -> None:
    answer = httpx.get(f"{live_server.url}/topics", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/clusters/local"
    page = httpx.get(f"{live_server.url}/topics", follow_redirects=True, timeout=20)
    assert page.status_code == 200
    assert "<h1>Topics" in page.text


def test_topics_with_several_clusters_lists_the_clusters(tmp_path) -> None:
    from starlette.testclient import TestClient

    from console.app import create_app

    settings = settings_from_mapping(
        {
            "index": {"url": f"sqlite:///{tmp_path / 'x.db'}"},
            "server": {"auth": "off"},
            "clusters": {"a": {"bootstrap": "127.0.0.1:1"}, "b": {"bootstrap": "127.0.0.1:2"}},
        }
    )
    with TestClient(create_app(settings, mode="console")) as client:
        answer = client.get("/topics", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, "/clusters")
