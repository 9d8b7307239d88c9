"""Records compressed by producers with any of Kafka's codecs are indexed as they were sent
(a shop's producers choose lz4, zstd or snappy as often as gzip)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from collectors.index import migrate
from collectors.index.engine import create_index_engine
from tests.collectors.kafka.test_tap import rows_of, tap_for, wait_for_rows
from tests.kafka_helpers import create_topic

pytestmark = pytest.mark.kafka


async def test_every_codec_is_read(kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate.upgrade(engine)
    await create_topic(kafka_bootstrap, unique_topic)
    codecs = ("gzip", "snappy", "lz4", "zstd")
    for codec in codecs:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, compression_type=codec)
        await producer.start()
        try:
            await producer.send_and_wait(unique_topic, b'{"codec": "%s"}' % codec.encode())
        finally:
            await producer.stop()
    tap = tap_for(kafka_bootstrap, engine, [re.escape(unique_topic)], writer="thread")
    await tap.start()
    try:
        await wait_for_rows(engine, unique_topic, len(codecs), timeout_s=30)
    finally:
        await tap.stop()
    values = [bytes(row["value"]) for row in rows_of(engine, unique_topic)]
    engine.dispose()
    assert values == [b'{"codec": "%s"}' % c.encode() for c in codecs]
