"""Small helpers for tests that talk to the real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

Header = tuple[str, bytes]


async def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def create_scenario_topics(bootstrap: str, base: str, scenarios: Iterable[str]) -> dict[str, str]:
    """A topic and its `-dlt` per scenario, named `{base}-{scenario}`, made before a
    collector starts (so it subscribes once, with no rebalance per test)."""
    topics = {scenario: f"{base}-{scenario}" for scenario in scenarios}

    async def create_all() -> None:
        for topic in topics.values():
            await create_topic(bootstrap, topic)
            await create_topic(bootstrap, f"{topic}-dlt")

    asyncio.run(create_all())
    return topics


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None, Sequence[Header]]],
    partition: int | None = None,
) -> list[tuple[int, int]]:
    """Send (key, value, headers) records in order; return their (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=list(headers), partition=partition)
            for key, value, headers in records
        ]
        results = [await future for future in futures]
    finally:
        await producer.stop()
    return [(r.partition, r.offset) for r in results]


async def joined_consumer(bootstrap: str, topic: str, group_id: str) -> AIOKafkaConsumer:
    """A consumer that joined its group and owns the topic's partitions."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
        auto_offset_reset="earliest", heartbeat_interval_ms=300, session_timeout_ms=6000,
    )  # fmt: skip
    await consumer.start()
    deadline = time.monotonic() + 20
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise AssertionError("the consumer was never assigned its partitions")
        await consumer.getmany(timeout_ms=200)
    return consumer
