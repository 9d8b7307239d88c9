"""Offset resets and group deletion against the real broker: previewed, applied, read back,
and refused (in words, naming the members) while the group has active consumers."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import TopicPartition

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client
from collectors.kafka.lag_look import look_at_group
from console.operations import group_offsets
from console.operations.fields import PlanError
from console.operations.offset_plan import ResetRequest
from tests.kafka_helpers import create_topic, joined_consumer, produce

pytestmark = pytest.mark.kafka


async def group_at(bootstrap: str, topic: str, offsets: dict[int, int]) -> str:
    """A group that read the topic, committed `offsets` per partition and left."""
    group = f"g-reset-{uuid.uuid4().hex[:8]}"
    consumer = await joined_consumer(bootstrap, topic, group)
    try:
        await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()
    return group


async def committed(cluster: ClusterConfig, group: str) -> dict[tuple[str, int], int]:
    async with admin_client(cluster) as admin:
        look = await look_at_group(admin, group)
    return dict(look.committed) if look else {}


@pytest.fixture
async def topic_with_records(kafka_cluster: ClusterConfig, unique_topic: str) -> str:
    await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=2)
    for partition in (0, 1):  # 50 records in each
        records = [(b"k%d" % i, b'{"n": %d}' % i, []) for i in range(50)]
        await produce(kafka_cluster.bootstrap, unique_topic, records, partition=partition)
    return unique_topic


async def test_a_reset_to_earliest_is_previewed_then_applied_and_read_back(
    kafka_cluster: ClusterConfig, topic_with_records: str
) -> None:
    topic = topic_with_records
    group = await group_at(kafka_cluster.bootstrap, topic, {0: 10, 1: 20})
    request = ResetRequest(kafka_cluster.name, group, "earliest")
    shown = await group_offsets.preview(kafka_cluster, request)
    assert shown["blocked"] is None and shown["state"] == "Empty"
    rows = {r["partition"]: r for r in shown["partitions"]}
    assert (rows[0]["current"], rows[0]["new"], rows[0]["reconsumed"]) == (10, 0, 10)
    assert (rows[1]["lag_before"], rows[1]["lag_after"]) == (30, 50)
    assert shown["totals"]["reconsumed"] == 30

    result = await group_offsets.apply(kafka_cluster, request)
    assert result["error"] is None
    assert [p["outcome"] for p in result["partitions"]] == ["reset", "reset"]
    assert await committed(kafka_cluster, group) == {(topic, 0): 0, (topic, 1): 0}


async def test_shift_offset_time_and_copy_with_clamping_on_chosen_partitions(
    kafka_cluster: ClusterConfig, topic_with_records: str
) -> None:
    topic = topic_with_records
    group = await group_at(kafka_cluster.bootstrap, topic, {0: 10, 1: 20})
    cluster = kafka_cluster.name

    back = ResetRequest(cluster, group, "shift", "-15", topic, (0, 1))
    rows = (await group_offsets.preview(kafka_cluster, back))["partitions"]
    assert [r["new"] for r in rows] == [0, 5]
    assert "outside the log" in (rows[0]["note"] or "")

    one = ResetRequest(cluster, group, "offset", "3", topic, (1,))
    result = await group_offsets.apply(kafka_cluster, one)
    assert [(p["partition"], p["outcome"]) for p in result["partitions"]] == [(1, "reset")]
    assert await committed(kafka_cluster, group) == {(topic, 0): 10, (topic, 1): 3}

    future = ResetRequest(cluster, group, "timestamp", str(int(time.time() * 1000) + 60_000))
    rows = (await group_offsets.preview(kafka_cluster, future))["partitions"]
    assert all(r["new"] == r["end"] and "no record" in (r["note"] or "") for r in rows)

    other = await group_at(kafka_cluster.bootstrap, topic, {0: 7})
    copy = ResetRequest(cluster, group, "group", other)
    rows = (await group_offsets.preview(kafka_cluster, copy))["partitions"]
    assert [(r["partition"], r["new"]) for r in rows] == [(0, 7), (1, None)]
    assert "has no offset here" in (rows[1]["note"] or "")


async def test_an_active_group_is_refused_naming_its_members_and_nothing_changes(
    kafka_cluster: ClusterConfig, topic_with_records: str
) -> None:
    topic = topic_with_records
    group = f"g-active-{uuid.uuid4().hex[:8]}"
    consumer = await joined_consumer(kafka_cluster.bootstrap, topic, group)
    try:
        await consumer.commit({TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 5})
        request = ResetRequest(kafka_cluster.name, group, "latest")
        shown = await group_offsets.preview(kafka_cluster, request)
        assert shown["state"] == "Stable" and len(shown["members"]) == 1
        assert "1 active member(s)" in (shown["blocked"] or "")
        assert shown["members"][0]["member_id"] in (shown["blocked"] or "")
        with pytest.raises(PlanError, match="stop these consumers"):
            await group_offsets.apply(kafka_cluster, request)
        with pytest.raises(PlanError, match="then delete it"):
            await group_offsets.delete_group(kafka_cluster, group)
        assert await committed(kafka_cluster, group) == {(topic, 0): 5, (topic, 1): 5}
    finally:
        await consumer.stop()


async def test_a_group_without_members_is_deleted_with_its_offsets(
    kafka_cluster: ClusterConfig, topic_with_records: str
) -> None:
    group = await group_at(kafka_cluster.bootstrap, topic_with_records, {0: 1, 1: 1})
    await group_offsets.delete_group(kafka_cluster, group)
    await asyncio.sleep(0.2)
    assert await committed(kafka_cluster, group) == {}


async def test_unknown_topics_and_partitions_are_refused_in_words(
    kafka_cluster: ClusterConfig, topic_with_records: str
) -> None:
    group = await group_at(kafka_cluster.bootstrap, topic_with_records, {0: 1})
    cluster = kafka_cluster.name
    missing = f"t-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PlanError, match=f"no topic '{missing}'"):
        await group_offsets.preview(
            kafka_cluster, ResetRequest(cluster, group, "latest", "", missing)
        )
    async with admin_client(kafka_cluster) as admin:
        assert missing not in await admin.list_topics()  # asking did not create it
    with pytest.raises(PlanError, match="partitions 0 to 1; 7 do not exist"):
        request = ResetRequest(cluster, group, "latest", "", topic_with_records, (0, 7))
        await group_offsets.preview(kafka_cluster, request)
