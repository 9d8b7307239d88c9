"""Reading records back from Kafka for jobs: the source records at given offsets (with the
index copy as a fallback), and the tail of target partitions for crash recovery."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine, select

from collectors.config import ClusterConfig
from collectors.index.models import events_table
from collectors.kafka.admin import client_options
from console.actions.provenance import Header, Provenance, provenance_of
from console.stores.jobs import source_match

Coordinates = tuple[str, int, int]  # topic, partition, offset
SEEK_GAP = 1_000  # wanted offsets further apart than this are sought, not read through
IDLE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SourceRecord:
    key: bytes | None
    value: bytes | None
    headers: list[Header]
    from_index: bool = False


@contextlib.asynccontextmanager
async def record_reader(cluster: ClusterConfig) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer without a group that reads what it is told to (assign + seek)."""
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_wait_ms=100,
        fetch_max_bytes=32 * 1024 * 1024,
        **client_options(cluster),
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def read_at(
    consumer: AIOKafkaConsumer, wanted: Iterable[Coordinates]
) -> dict[Coordinates, SourceRecord]:
    """The records at the given coordinates that Kafka still has."""
    by_partition: dict[TopicPartition, list[int]] = {}
    for topic, partition, offset in wanted:
        by_partition.setdefault(TopicPartition(topic, partition), []).append(offset)
    found: dict[Coordinates, SourceRecord] = {}
    for tp, offsets in by_partition.items():
        offsets = sorted(set(offsets))
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        offsets = [o for o in offsets if begin <= o < end]
        if not offsets:
            continue
        remaining = set(offsets)
        await _move_to(consumer, tp, offsets[0])
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while remaining:
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=5_000)
            records = batch.get(tp, [])
            if not records:
                if loop.time() - idle_since > IDLE_TIMEOUT_S:
                    break
                continue
            idle_since = loop.time()
            for record in records:
                if record.offset in remaining:
                    remaining.discard(record.offset)
                    found[(tp.topic, tp.partition, record.offset)] = SourceRecord(
                        record.key, record.value, list(record.headers)
                    )
            position = records[-1].offset + 1
            if position >= end:
                break
            remaining = {o for o in remaining if o >= position}
            if remaining and min(remaining) - position > SEEK_GAP:
                consumer.seek(tp, min(remaining))
    return found


async def _move_to(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
    """Read `tp` from `offset`, keeping what was prefetched when it is already there:
    re-assigning or seeking throws the prefetched records away."""
    if consumer.assignment() == {tp} and await consumer.position(tp) == offset:
        return
    if consumer.assignment() != {tp}:
        consumer.assign([tp])
    consumer.seek(tp, offset)


async def provenance_since(
    consumer: AIOKafkaConsumer, action_id: str, starts: dict[str, dict[str, int]]
) -> dict[Coordinates, Coordinates]:
    """Records of job `action_id` in the target partitions since `starts`:
    source coordinates -> target coordinates."""
    sent: dict[Coordinates, Coordinates] = {}
    for topic, partitions in starts.items():
        for partition_text, start in partitions.items():
            tp = TopicPartition(topic, int(partition_text))
            end = (await consumer.end_offsets([tp]))[tp]
            if end <= start:
                continue
            consumer.assign([tp])
            consumer.seek(tp, start)
            loop = asyncio.get_running_loop()
            idle_since = loop.time()
            position = start
            while position < end:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
                records = batch.get(tp, [])
                if not records:
                    if loop.time() - idle_since > IDLE_TIMEOUT_S:
                        raise TimeoutError(f"could not read {topic}/{tp.partition} to {end}")
                    continue
                idle_since = loop.time()
                for record in records:
                    found: Provenance | None = provenance_of(record.headers)
                    if found is not None and found.action_id == action_id:
                        source = (found.topic, found.partition, found.offset)
                        sent.setdefault(source, (topic, tp.partition, record.offset))
                position = records[-1].offset + 1
    return sent


async def partition_ends(
    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, topic: str
) -> dict[str, int]:
    """End offset of every partition of `topic` (the producer's metadata look-up waits
    for the topic, and creates it where the broker auto-creates topics)."""
    partitions = await producer.partitions_for(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    ends = await consumer.end_offsets(tps)
    return {str(tp.partition): offset for tp, offset in ends.items()}


def index_copies(
    engine: Engine, cluster: str, wanted: Sequence[Coordinates]
) -> dict[Coordinates, SourceRecord]:
    """Complete copies from the index (not truncated, every header kept) of `wanted`."""
    if not wanted:
        return {}
    c = events_table.c
    match = source_match(c.topic, c.partition, c.offset, wanted)
    query = select(c.topic, c.partition, c.offset, c.key, c.value, c.value_truncated, c.headers)
    copies: dict[Coordinates, SourceRecord] = {}
    with engine.connect() as connection:
        for row in connection.execute(query.where(c.cluster == cluster, match)):
            if row.value_truncated:
                continue
            headers = headers_from_index(row.headers)
            if headers is None:
                continue
            copies[(row.topic, row.partition, row.offset)] = SourceRecord(
                row.key, row.value, headers, from_index=True
            )
    return copies


def headers_from_index(headers_json: str) -> list[Header] | None:
    """The wire headers back from the index's JSON, or None if any was cut short."""
    try:
        entries: Any = json.loads(headers_json)
    except ValueError:
        return None
    headers: list[Header] = []
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str):
            return None
        name, value = entry
        if value is None:
            headers.append((name, None))
        elif isinstance(value, str):
            if name == "\u2026":  # the "N more headers" marker
                return None
            headers.append((name, value.encode("utf-8")))
        elif isinstance(value, dict) and "b64" in value and not value.get("truncated"):
            headers.append((name, base64.b64decode(value["b64"])))
        else:
            return None
    return headers
