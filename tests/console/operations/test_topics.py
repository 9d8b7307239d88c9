"""Topic changes against the real broker, and Kafka's refusals in its own words."""

from __future__ import annotations

import uuid

import pytest

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client
from console.operations import topics
from console.operations.fields import PlanError, topic_name, whole_number
from tests.kafka_helpers import produce

pytestmark = pytest.mark.kafka


def test_names_numbers_and_configs_are_checked_before_kafka() -> None:
    for bad in ("", "a b", "..", "x" * 250):
        with pytest.raises(PlanError, match="topic:"):
            topic_name(bad)
    with pytest.raises(PlanError, match="from 1 to 10,000"):
        whole_number("0", "partitions", 1, 10_000)
    assert topics.parse_configs("retention.ms=60000\n\ncleanup.policy = compact\nx.y=") == {
        "retention.ms": "60000", "cleanup.policy": "compact", "x.y": None,
    }  # fmt: skip
    assert topics.parse_configs({"a.b": True, "c": None, "d": 5}) == {"a.b": "true", "c": None,
                                                                     "d": "5"}  # fmt: skip
    with pytest.raises(PlanError, match="line 1 is not 'name=value'"):
        topics.parse_configs("retention.ms")
    with pytest.raises(PlanError, match="is not a config name"):
        topics.parse_configs({"Bad Name": "1"})


async def test_create_check_edit_grow_truncate_and_delete_a_topic(
    kafka_cluster: ClusterConfig,
) -> None:
    name = f"t-admin-{uuid.uuid4().hex[:8]}"
    configs = {"retention.ms": "3600000"}
    await topics.create(kafka_cluster, name, 2, 1, configs, validate_only=True)
    async with admin_client(kafka_cluster) as admin:
        assert name not in await admin.list_topics()  # validated, not made
    with pytest.raises(PlanError, match="InvalidReplicationFactor"):
        await topics.create(kafka_cluster, name, 2, 3, configs)
    with pytest.raises(PlanError, match="InvalidConfig"):
        await topics.create(kafka_cluster, name, 2, 1, {"retention.ms": "soon"})
    await topics.create(kafka_cluster, name, 2, 1, configs)
    with pytest.raises(PlanError, match="TopicAlreadyExists"):
        await topics.create(kafka_cluster, name, 2, 1, {})

    shown = {c["name"]: c for c in await topics.configs(kafka_cluster, name)}
    assert shown["retention.ms"]["is_override"] and shown["retention.ms"]["value"] == "3600000"
    assert not shown["segment.bytes"]["is_override"]

    await topics.alter(kafka_cluster, name, {"cleanup.policy": "compact,delete"})
    shown = {c["name"]: c for c in await topics.configs(kafka_cluster, name)}
    assert shown["cleanup.policy"]["value"] == "compact,delete"
    assert shown["retention.ms"]["value"] == "3600000"  # the other override is kept
    await topics.alter(kafka_cluster, name, {"retention.ms": None})
    shown = {c["name"]: c for c in await topics.configs(kafka_cluster, name)}
    assert not shown["retention.ms"]["is_override"] and shown["cleanup.policy"]["is_override"]
    with pytest.raises(PlanError, match="Kafka refused to change the configs"):
        await topics.alter(kafka_cluster, name, {"no.such.config": "1"})

    assert await topics.add_partitions(kafka_cluster, name, 3) == 2
    with pytest.raises(PlanError, match="the topic has 3; a topic only grows"):
        await topics.add_partitions(kafka_cluster, name, 3)

    records = [(b"k%d" % i, b"x", []) for i in range(10)]  # compacted: records need keys
    await produce(kafka_cluster.bootstrap, name, records, partition=0)
    assert await topics.delete_records(kafka_cluster, name, 0, 4) == 4
    with pytest.raises(PlanError, match="OffsetOutOfRange"):
        await topics.delete_records(kafka_cluster, name, 0, 99)

    await topics.delete(kafka_cluster, name)
    with pytest.raises(PlanError, match="no topic"):
        await topics.configs(kafka_cluster, name)
