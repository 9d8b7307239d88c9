"""Deleting a group's committed offsets for one topic against the real broker: deleted and
read back; refused in words, naming the members, while a member reads the topic (while it
reads another topic only, allowed); an unknown group or a topic without offsets refused as
not found, with nothing deleted."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition

from collectors.config import ClusterConfig
from console.operations import offset_delete
from console.operations.fields import PlanError
from tests.console.operations.test_group_offsets import committed, group_at
from tests.kafka_helpers import create_topic, joined_consumer

pytestmark = pytest.mark.kafka


@pytest.fixture
async def two_topics(kafka_cluster: ClusterConfig) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    first, second = f"t-offdel-a-{suffix}", f"t-offdel-b-{suffix}"
    await create_topic(kafka_cluster.bootstrap, first, partitions=2)
    await create_topic(kafka_cluster.bootstrap, second, partitions=1)
    return first, second


async def test_a_topics_offsets_are_deleted_and_the_others_kept(
    kafka_cluster: ClusterConfig, two_topics: tuple[str, str]
) -> None:
    first, second = two_topics
    group = await group_at(kafka_cluster.bootstrap, first, {0: 3, 1: 4})
    other = await group_at(kafka_cluster.bootstrap, second, {0: 1})  # its own group
    consumer = await joined_consumer(kafka_cluster.bootstrap, second, group)
    try:  # the group now has a member, reading the second topic only
        await consumer.commit({TopicPartition(second, 0): 2})
        result = await offset_delete.delete_offsets(kafka_cluster, group, first)
        assert result["error"] is None and result["deleted"] == 2
        rows = [(p["partition"], p["before"], p["after"], p["error"]) for p in result["partitions"]]
        assert rows == [(0, 3, None, None), (1, 4, None, None)]
        assert await committed(kafka_cluster, group) == {(second, 0): 2}

        with pytest.raises(PlanError) as refused:
            await offset_delete.delete_offsets(kafka_cluster, group, second)
        words = str(refused.value)
        assert "1 active member(s) subscribed to topic " + second in words
        member_id = consumer._coordinator.member_id
        assert member_id in words and "stop these consumers" in words
        assert await committed(kafka_cluster, group) == {(second, 0): 2}
    finally:
        await consumer.stop()
    assert await committed(kafka_cluster, other) == {(second, 0): 1}
    result = await offset_delete.delete_offsets(kafka_cluster, group, second)  # left: allowed
    assert result["deleted"] == 1 and await committed(kafka_cluster, group) == {}


async def test_an_unknown_group_or_a_topic_without_offsets_is_not_found(
    kafka_cluster: ClusterConfig, two_topics: tuple[str, str]
) -> None:
    first, second = two_topics
    with pytest.raises(offset_delete.NotFound, match="there is no consumer group 'g-none-"):
        await offset_delete.delete_offsets(kafka_cluster, f"g-none-{uuid.uuid4().hex}", first)
    group = await group_at(kafka_cluster.bootstrap, first, {0: 1})
    with pytest.raises(offset_delete.NotFound, match=f"it has offsets for {first}"):
        await offset_delete.delete_offsets(kafka_cluster, group, second)
    assert await committed(kafka_cluster, group) == {(first, 0): 1}


def test_kafkas_error_codes_in_words() -> None:
    assert offset_delete.error_name(86) == "GroupSubscribedToTopic"
    assert offset_delete.error_name(68) == "NonEmptyGroup"
