"""A poison pill on the group page, against the real broker: a group stopped on a partition
shows the record at its committed offset, and the dead letter of the same event says what
it fails with, in one sentence."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from aiokafka import TopicPartition

from collectors.config import ClusterConfig
from collectors.index.engine import create_index_engine
from console.app import create_app
from console.stuck_records import stuck_partitions
from tests.conftest import LiveServer, make_settings, serve_in_thread
from tests.kafka_helpers import create_topic, joined_consumer, produce

pytestmark = pytest.mark.kafka


def test_only_stopped_or_stalled_partitions_with_lag_are_stuck() -> None:
    parts = [
        {"topic": "a", "partition": 0, "status": "STOP", "lag": 3, "committed_offset": 7},
        {"topic": "a", "partition": 1, "status": "STALL", "lag": 0, "committed_offset": 7},
        {"topic": "a", "partition": 2, "status": "WARN", "lag": 9, "committed_offset": 7},
        {"topic": "a", "partition": 3, "status": "STALL", "lag": 2, "committed_offset": None},
    ]
    assert [p["partition"] for p in stuck_partitions(parts)] == [0]


@pytest.fixture(scope="module")
def stuck_server(kafka_cluster: ClusterConfig, tmp_path_factory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("stuck")
    settings = make_settings(
        kafka_cluster, f"sqlite:///{folder / 'index.db'}",
        lag={"interval_s": 0.5, "window": 4},
        collector={"group_id": f"eventscope-stuck-{uuid.uuid4().hex[:8]}"},
    )  # fmt: skip
    engine = create_index_engine(settings.index.url)
    with serve_in_thread(create_app(settings, mode="all", engine=engine)) as url:
        yield LiveServer(url, settings, engine)


def _event(event_id: str, *extra: tuple[str, bytes]) -> list[tuple[str, bytes]]:
    return [("ce_specversion", b"1.0"), ("ce_id", event_id.encode()),
            ("ce_type", b"PaymentRequested"), ("ce_source", b"checkout"), *extra]  # fmt: skip


@pytest.mark.browser
async def test_a_stopped_group_shows_the_record_it_is_stuck_at(
    stuck_server: LiveServer, kafka_bootstrap: str, page
) -> None:
    base = f"t-stuck-{uuid.uuid4().hex[:8]}"
    topic, dlt, group = base, f"{base}.DLT", f"g-{base}"
    for name in (topic, dlt):
        await create_topic(kafka_bootstrap, name)
    ids = [f"{base}-e{n}" for n in range(5)]
    await produce(kafka_bootstrap, topic, [(b"k", b'{"n": 1}', _event(i)) for i in ids])
    # The consumer's error handler dead-lettered the record at offset 2 (Spring's headers).
    await produce(kafka_bootstrap, dlt, [(b"k", b'{"n": 1}', _event(
        ids[2],
        ("kafka_dlt-original-topic", topic.encode()),
        ("kafka_dlt-original-partition", (0).to_bytes(4, "big")),
        ("kafka_dlt-original-offset", (2).to_bytes(8, "big")),
        ("kafka_dlt-exception-fqcn", b"java.lang.NullPointerException"),
        ("kafka_dlt-exception-message", b"amount was null"),
    ))])  # fmt: skip
    consumer = await joined_consumer(kafka_bootstrap, topic, group)
    try:
        await consumer.commit({TopicPartition(topic, 0): 2})
    finally:
        await consumer.stop()  # it left with lag behind it: STOP once the window is full
    url = f"{stuck_server.url}/api/groups/{quote(group, safe='')}"
    deadline = time.monotonic() + 40
    async with httpx.AsyncClient(timeout=20) as client:
        while True:
            answer = await client.get(url)
            body = answer.json() if answer.status_code == 200 else {}
            stuck = body.get("stuck") or []
            if stuck and len(stuck[0]["attempts"]) == 2:
                break
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.5)
    found = stuck[0]
    assert (found["topic"], found["partition"], found["offset"]) == (topic, 0, 2)
    assert found["event_id"] == ids[2] and found["indexed"]
    assert [a["kind"] for a in found["attempts"]] == ["original", "dead letter"]
    assert found["error_class"] == "java.lang.NullPointerException"
    assert found["sentence"].startswith(f"{group} is stuck at {topic}/0@2: this record")
    assert "with java.lang.NullPointerException" in found["sentence"]
    await page.goto(f"{stuck_server.url}/groups/{quote(group, safe='')}?cluster=local")
    section = page.locator("#group-stuck")
    assert "failing since" in await section.inner_text()
    assert await section.locator(".stuck-attempts tbody tr").count() == 2
    await section.locator(".stuck-sentence + p a").first.click()
    await page.wait_for_url(f"**/events/local/{topic}/0/2")
    assert page.problems == []
