"""A cluster's brokers as Kafka describes them now: the cluster id, the controller, each
broker's address and rack, its log directories (DescribeLogDirs: what they hold, and the
disk's total and usable bytes where the broker says), and one broker's configs. Read only:
nothing here changes a broker."""

from __future__ import annotations

import asyncio

from aiokafka.admin.config_resource import ConfigResourceType
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client
from collectors.kafka.log_dirs import LogDir, log_dirs
from console.operations.configs import ConfigJson
from console.operations.configs import describe as describe_configs
from console.operations.fields import PlanError

LOG_DIRS_TIMEOUT_S = 10.0


class LogDirJson(TypedDict):
    path: str
    error: str | None  # Kafka's error for the directory (e.g. KafkaStorageError: offline)
    size_bytes: int  # the partitions in it
    partitions: int
    total_bytes: int | None  # the disk's size (DescribeLogDirs v4, Kafka 3.3+), else None
    usable_bytes: int | None


class BrokerNodeJson(TypedDict):
    id: int
    host: str
    port: int
    rack: str | None
    controller: bool


class BrokerWithLogDirsJson(BrokerNodeJson):
    log_dirs: list[LogDirJson]
    log_dirs_error: str | None  # why the broker's log directories could not be read


class BrokersJson(TypedDict):
    cluster: str
    cluster_id: str | None
    controller_id: int | None
    brokers: list[BrokerWithLogDirsJson]


class BrokerConfigsJson(TypedDict):
    cluster: str
    broker: BrokerNodeJson
    configs: list[ConfigJson]
    total: int  # configs before the name filter


class NoSuchBroker(PlanError):
    """A broker id the cluster does not have."""


def _log_dir_json(found: LogDir) -> LogDirJson:
    return LogDirJson(
        path=found.path, error=found.error, size_bytes=found.size_bytes,
        partitions=found.partitions, total_bytes=found.total_bytes,
        usable_bytes=found.usable_bytes,
    )  # fmt: skip


async def brokers(cluster: ClusterConfig, with_log_dirs: bool = True) -> BrokersJson:
    """Every broker, by id; a broker whose log directories cannot be read says why (the
    brokers are asked at once, so one that does not answer delays the page by its timeout
    only)."""
    async with admin_client(cluster) as admin:
        description = await admin.describe_cluster()
        controller = description.get("controller_id")
        found = [
            BrokerWithLogDirsJson(
                id=raw["node_id"], host=raw["host"], port=raw["port"], rack=raw.get("rack"),
                controller=raw["node_id"] == controller, log_dirs=[], log_dirs_error=None,
            )
            for raw in sorted(description.get("brokers", []), key=lambda b: b["node_id"])
        ]  # fmt: skip

        async def fill(broker: BrokerWithLogDirsJson) -> None:
            try:
                async with asyncio.timeout(LOG_DIRS_TIMEOUT_S):
                    dirs = await log_dirs(admin, broker["id"])
                broker["log_dirs"] = [_log_dir_json(d) for d in dirs]
            except Exception as exc:  # shown on the page: the others still answer
                broker["log_dirs_error"] = f"{type(exc).__name__}: {exc}"[:300]

        if with_log_dirs:
            await asyncio.gather(*(fill(broker) for broker in found))
    return BrokersJson(
        cluster=cluster.name, cluster_id=description.get("cluster_id"),
        controller_id=controller, brokers=found,
    )  # fmt: skip


async def broker_configs(cluster: ClusterConfig, broker_id: int) -> BrokerConfigsJson:
    """The broker's configs (every one; the view filters by name). NoSuchBroker for an id
    the cluster does not have."""
    async with admin_client(cluster) as admin:
        description = await admin.describe_cluster()
        raw = next((b for b in description.get("brokers", []) if b["node_id"] == broker_id), None)
        if raw is None:
            ids = ", ".join(str(b["node_id"]) for b in description.get("brokers", []))
            raise NoSuchBroker(f"broker: cluster {cluster.name} has no broker {broker_id} "
                               f"(its brokers: {ids or 'none'})")  # fmt: skip
        configs = await describe_configs(admin, ConfigResourceType.BROKER, str(broker_id))
    broker = BrokerNodeJson(
        id=broker_id, host=raw["host"], port=raw["port"], rack=raw.get("rack"),
        controller=broker_id == description.get("controller_id"),
    )  # fmt: skip
    return BrokerConfigsJson(cluster=cluster.name, broker=broker, configs=configs,
                             total=len(configs))  # fmt: skip
