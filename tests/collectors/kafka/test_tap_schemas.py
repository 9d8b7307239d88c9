"""The tap decodes what the Confluent serializers wrote, through the real registry; records
written while the registry is down are indexed raw and decoded when it is back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from collectors.config import ClusterConfig, CollectorConfig, SchemaRegistryConfig
from collectors.conventions import Conventions
from collectors.index.models import schema_usage_table
from collectors.kafka.tap import Tap
from collectors.sagas import SagaHook, saga_options
from collectors.schemas import local_registry
from collectors.schemas.redecode import Redecoder, pending_count
from collectors.schemas.usage import SchemaUsageHook
from console.stores.events import EventFilter, search_events
from tests.collectors.kafka.test_tap import rows_of, wait_for_rows
from tests.conftest import IndexDatabase, free_port
from tests.kafka_helpers import create_topic, produce
from tests.schema_fixtures import Serializers, discount, order, payment

pytestmark = pytest.mark.kafka


def tap_with_registry(bootstrap: str, engine, topic: str, registry_url: str) -> Tap:  # type: ignore[no-untyped-def]
    cluster = ClusterConfig(
        name="local", bootstrap=bootstrap, include=(topic,),
        schema_registry=SchemaRegistryConfig(url=registry_url, timeout_s=2),
    )  # fmt: skip
    settings = CollectorConfig(group_id=f"eventscope-test-{uuid.uuid4().hex[:8]}")
    return Tap(cluster, engine, Conventions(), settings)


async def test_registry_records_are_indexed_decoded_and_found_inside(
    kafka_bootstrap: str, schema_registry_url: str, index_db: IndexDatabase
) -> None:
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    serializers = Serializers(schema_registry_url, topic)
    records = [
        (serializers.key(serializers.avro_key, "order-77"),
         serializers.value(serializers.avro, order("corr-avro-tap", email="grace@example.com")),
         []),
        (None, serializers.value(serializers.payment, payment("corr-pb-tap")), []),
        (None, serializers.value(serializers.discount, discount("corr-pb-nested")), []),
        (None, serializers.value(serializers.json, {"eventId": "e-1", "eventType": "Registered",
                                                     "correlationId": "corr-json-tap"}), []),
        (None, b"\x00\x00\x01", []),  # a truncated frame: indexed, marked, never a stall
        # Plain JSON where the registry has the topic's subject: read as JSON, and flagged.
        (None, b'{"correlationId": "corr-plain"}', []),
    ]  # fmt: skip
    serializers.close()
    await create_topic(kafka_bootstrap, topic)
    await produce(kafka_bootstrap, topic, records)
    tap = tap_with_registry(kafka_bootstrap, index_db.engine, topic, schema_registry_url)
    await tap.start()
    try:
        await wait_for_rows(index_db.engine, topic, len(records))
    finally:
        await tap.stop()
    rows = rows_of(index_db.engine, topic)
    states = [(r["content_type"], r["decode_state"]) for r in rows]
    assert states == [
        ("avro-confluent", "decoded"), ("protobuf-confluent", "decoded"),
        ("protobuf-confluent", "decoded"), ("json-schema-confluent", "decoded"),
        ("schema-registry", "failed"), ("json", "failed"),
    ]  # fmt: skip
    assert [r["value"] for r in rows] == [value for _, value, _ in records]  # bytes as sent
    assert rows[4]["decode_note"].startswith("truncated frame: 3 bytes")
    assert rows[5]["decode_note"].startswith(f"wrong magic byte 0x7b: subject {topic}-value")

    def find(**filters: str) -> list[int]:
        found = search_events(index_db.engine, EventFilter(**filters)).events  # type: ignore[arg-type]
        return sorted(r["offset"] for r in found)

    assert find(correlation_id="corr-avro-tap") == [0]
    assert find(correlation_id="corr-pb-tap") == [1]
    assert find(correlation_id="corr-pb-nested") == [2]
    assert find(correlation_id="corr-json-tap") == [3]
    assert find(correlation_id="corr-plain") == [5]
    assert find(text="grace@example.com", topics=(topic,)) == [0]  # type: ignore[arg-type]
    assert find(key="order-77") == [0]  # the Avro key, by its decoded text
    with index_db.engine.connect() as connection:
        usage = connection.execute(
            select(schema_usage_table.c.part, schema_usage_table.c.schema_id).where(
                schema_usage_table.c.topic == topic
            )
        ).all()
    value_ids = {int.from_bytes(value[1:5], "big") for _, value, _ in records[:4]}
    key_id = int.from_bytes(records[0][0][1:5], "big")  # type: ignore[index]
    assert sorted(usage) == sorted([("key", key_id), *(("value", i) for i in value_ids)])


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[local_registry.LocalRegistry]:
    """A registry of this test's own, to stop and start again (its schemas persist)."""
    registry = local_registry.LocalRegistry(tmp_path / "registry", port=free_port(span=2))
    local_registry.start(registry, quiet=True)
    try:
        yield registry
    finally:
        local_registry.stop(registry)


async def test_records_written_while_the_registry_is_down_are_decoded_when_it_is_back(
    kafka_bootstrap: str, own_registry: local_registry.LocalRegistry, tmp_path: Path
) -> None:
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate.upgrade(engine)
    topic = f"payments-{uuid.uuid4().hex[:8]}"
    serializers = Serializers(own_registry.url, topic)
    # The producer registered its schemas and keeps their ids: it goes on while the
    # registry is down, as Confluent's serializers do.
    values = [
        serializers.value(serializers.avro, order(f"saga-{i}", order_id=f"o-{i}"))
        for i in range(40)
    ]
    serializers.close()
    local_registry.stop(own_registry)
    await create_topic(kafka_bootstrap, topic)
    await produce(kafka_bootstrap, topic, [(None, v, []) for v in values])

    tap = tap_with_registry(kafka_bootstrap, engine, topic, own_registry.url)
    decoder = tap.decoder
    await tap.start()
    try:
        await wait_for_rows(engine, topic, len(values))
        rows = rows_of(engine, topic)
        assert {r["decode_state"] for r in rows} == {"pending"}
        assert all(r["correlation_id"] is None for r in rows)
        assert rows[0]["decode_note"].startswith("schema ")
        assert "registry unreachable" in rows[0]["decode_note"]
        assert pending_count(engine, "local") == len(values)

        await asyncio.to_thread(local_registry.start, own_registry, quiet=True)
        hooks = [SagaHook(saga_options({})), SchemaUsageHook()]
        redecoder = Redecoder("local", engine, Conventions(), decoder, hooks=hooks, idle_s=0.5)
        await redecoder.start()
        try:
            deadline = time.monotonic() + 90
            while pending_count(engine, "local") and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
        finally:
            await redecoder.stop()
    finally:
        await tap.stop()
    rows = rows_of(engine, topic)
    assert len(rows) == len(values)  # none lost, none duplicated
    assert [r["offset"] for r in rows] == list(range(len(values)))
    assert {r["decode_state"] for r in rows} == {"decoded"}
    assert [r["correlation_id"] for r in rows] == [f"saga-{i}" for i in range(len(values))]
    assert json.loads(rows[3]["decoded_value"])["orderId"] == "o-3"
    assert redecoder.decoded == len(values)
    found = search_events(engine, EventFilter(correlation_id="saga-7")).events
    assert [r["offset"] for r in found] == [7]
    from collectors.index.saga_models import sagas_table

    with engine.connect() as connection:
        sagas = connection.execute(
            select(sagas_table.c.saga_id).where(sagas_table.c.saga_id.like("saga-%"))
        ).all()
    assert len(sagas) == len(values)  # the sagas saw the decoded events
    engine.dispose()
