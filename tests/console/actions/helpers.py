"""Dead-letter records as Spring Kafka and Kafka Connect write them, indexed the tap's way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Engine

from collectors.conventions import Conventions, RawRecord, normalize
from collectors.index.writer import write_batch
from collectors.kafka.tap import to_row
from console.actions.provenance import Header

CLUSTER = "local"


def spring_headers(original: str, partition: int, offset: int, error: str = "BoomException"):
    return [
        ("kafka_dlt-original-topic", original.encode()),
        ("kafka_dlt-original-partition", partition.to_bytes(4, "big")),
        ("kafka_dlt-original-offset", offset.to_bytes(8, "big")),
        ("kafka_dlt-exception-fqcn", f"com.example.{error}".encode()),
        ("kafka_dlt-exception-message", b"it went wrong"),
        ("kafka_dlt-exception-stacktrace", b"com.example.Boom\n\tat Foo.bar(Foo.java:1)"),
        ("trace-me", b"keep"),
    ]


def connect_headers(original: str, partition: int, offset: int):
    return [
        ("__connect.errors.topic", original.encode()),
        ("__connect.errors.partition", str(partition).encode()),
        ("__connect.errors.offset", str(offset).encode()),
        ("__connect.errors.connector.name", b"sink-1"),
        ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
        ("__connect.errors.exception.message", b"bad data"),
        ("app", b"orders"),
    ]


async def index_topic(
    engine: Engine, bootstrap: str, topic: str, expected: int, partitions: int = 1
) -> None:
    """Consume `topic` from the start and write its records as the collector does."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        conventions = Conventions()
        rows = []
        deadline = time.monotonic() + 30
        while len(rows) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for r in records:
                    raw = RawRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                                    list(r.headers))  # fmt: skip
                    rows.append(
                        to_row(CLUSTER, normalize(raw, conventions), int(time.time() * 1000))
                    )
        assert len(rows) == expected
        await asyncio.to_thread(write_batch, engine, CLUSTER, rows, {}, int(time.time() * 1000))
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 30.0, partitions: int = 1
):
    """Every record of `topic` (waits until `expected` are there)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    found = []
    try:
        deadline = time.monotonic() + timeout
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while len(found) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            for records in batch.values():
                found.extend(records)
        await asyncio.sleep(0.3)  # and nothing more than expected arrives
        batch = await consumer.getmany(timeout_ms=300)
        for records in batch.values():
            found.extend(records)
    finally:
        await consumer.stop()
    return found


def header_map(headers: Sequence[Header]) -> dict[str, bytes | None]:
    return dict(headers)
