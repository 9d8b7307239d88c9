"""Brokers against the real broker: the cluster, its controller, each broker's log
directories (what they hold, the disk's bytes from DescribeLogDirs v4), a broker's configs
with their sources and sensitive values hidden, and an unknown broker refused in words."""

from __future__ import annotations

import pytest

from collectors.config import ClusterConfig
from console.operations import brokers
from console.operations.configs import named
from tests.kafka_helpers import create_topic, produce

pytestmark = pytest.mark.kafka


async def test_the_brokers_with_their_log_directories(
    kafka_cluster: ClusterConfig, unique_topic: str
) -> None:
    await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=2)
    await produce(kafka_cluster.bootstrap, unique_topic, [(None, b"x" * 1000, [])] * 20)
    found = await brokers.brokers(kafka_cluster)
    assert found["cluster"] == kafka_cluster.name and found["cluster_id"]
    (broker,) = found["brokers"]  # the test session's single broker
    host, _, port = kafka_cluster.bootstrap.rpartition(":")
    assert (broker["host"], broker["port"]) == (host, int(port))
    assert broker["controller"] and found["controller_id"] == broker["id"]
    assert broker["log_dirs_error"] is None
    (log_dir,) = broker["log_dirs"]
    assert log_dir["error"] is None and log_dir["path"].startswith("/")
    assert log_dir["partitions"] >= 2 and log_dir["size_bytes"] >= 20_000
    assert log_dir["total_bytes"] and log_dir["usable_bytes"] is not None
    assert 0 <= log_dir["usable_bytes"] <= log_dir["total_bytes"]


async def test_a_brokers_configs_with_sources_and_sensitive_values_hidden(
    kafka_cluster: ClusterConfig,
) -> None:
    broker_id = (await brokers.brokers(kafka_cluster, with_log_dirs=False))["brokers"][0]["id"]
    found = await brokers.broker_configs(kafka_cluster, broker_id)
    assert found["broker"]["id"] == broker_id and found["total"] == len(found["configs"]) > 100
    by_name = {c["name"]: c for c in found["configs"]}
    assert by_name["node.id"]["value"] == str(broker_id)
    assert by_name["node.id"]["source"] == "broker (static)" and by_name["node.id"]["read_only"]
    assert by_name["num.network.threads"]["source"] == "default"
    assert not by_name["num.network.threads"]["read_only"]  # dynamically changeable
    sensitive = [c for c in found["configs"] if c["sensitive"]]
    assert sensitive and all(c["value"] is None for c in sensitive)
    assert "ssl.key.password" in {c["name"] for c in sensitive}
    assert [c["name"] for c in named(found["configs"], " LOG.RETENTION.HOURS ")] == [
        "log.retention.hours"
    ]


async def test_an_unknown_broker_is_refused_in_words(kafka_cluster: ClusterConfig) -> None:
    with pytest.raises(brokers.NoSuchBroker, match="has no broker 4242"):
        await brokers.broker_configs(kafka_cluster, 4242)
