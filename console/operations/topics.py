"""Changing topics in Kafka: create, delete, edit configs, add partitions, delete records.

Each change is checked here first for what needs no broker (names, numbers), then left to
Kafka, whose refusal is reported in its own words (an unknown config, a replication factor
above the number of brokers, a policy). Creating a topic is validated by the broker before
it is made (CreateTopics' validate-only mode), so the form can show the broker's verdict.

Config edits use AlterConfigs, which replaces a topic's whole set of overrides: the current
overrides are read, the change applied to them, and the result sent, so an edit of one
config keeps the others (two people editing the same topic at once: the last one wins).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client, describe_existing_topics
from console.operations.configs import ConfigJson
from console.operations.configs import describe as describe_configs
from console.operations.fields import PlanError, refuse_on_error

CONFIG_NAME = re.compile(r"^[a-z0-9.]{1,100}$")
MAX_PARTITIONS = 10_000
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's default for message.max.bytes
MAX_CONFIGS = 100


def parse_configs(raw: Any) -> dict[str, str | None]:
    """`name=value` lines (a form) or a JSON object; a value of null (or `name=` with
    nothing after it in a form) removes the override."""
    if raw is None or raw == "":
        return {}
    pairs: dict[str, str | None] = {}
    if isinstance(raw, str):
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            name, equals, value = line.partition("=")
            if not equals:
                raise PlanError(f"configs: line {number} is not 'name=value'")
            pairs[name.strip()] = value.strip() or None
    elif isinstance(raw, dict):
        for name, value in raw.items():
            if value is not None and not isinstance(value, str | int | bool):
                raise PlanError(f"configs: {name} needs a text value (or null to remove it)")
            pairs[str(name)] = (
                None
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    else:
        raise PlanError("configs: an object of name: value")
    if len(pairs) > MAX_CONFIGS:
        raise PlanError(f"configs: at most {MAX_CONFIGS}")
    for name in pairs:
        if not CONFIG_NAME.match(name):
            raise PlanError(f"configs: {name!r} is not a config name")
    return pairs


async def create(
    cluster: ClusterConfig,
    name: str,
    partitions: int,
    replication: int,
    configs: Mapping[str, str | None],
    validate_only: bool = False,
) -> None:
    settings = {k: v for k, v in configs.items() if v is not None}
    async with admin_client(cluster) as admin:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication, topic_configs=settings)],
            validate_only=validate_only,
        )
    for entry in response.topic_errors:
        refuse_on_error(entry[1], entry[2] if len(entry) > 2 else None, f"create topic {name}")


async def delete(cluster: ClusterConfig, name: str) -> None:
    async with admin_client(cluster) as admin:
        await existing(admin, name)
        response = await admin.delete_topics([name])
    for entry in response.topic_error_codes:
        refuse_on_error(entry[1], None, f"delete topic {name}")


async def configs(cluster: ClusterConfig, name: str) -> list[ConfigJson]:
    async with admin_client(cluster) as admin:
        await existing(admin, name)
        return await _configs(admin, name)


async def alter(
    cluster: ClusterConfig,
    name: str,
    changes: Mapping[str, str | None],
    *,
    others: str = "keep",
) -> dict[str, str | None]:
    """Apply `changes` to the topic's overrides (None removes one); the other overrides are
    kept, or with `others="remove"` (a form holding every override) removed, sensitive
    ones aside. Returns the overrides as they were."""
    async with admin_client(cluster) as admin:
        await existing(admin, name)
        current = await _configs(admin, name)
        before = {c["name"]: c["value"] for c in current if c["is_override"]}
        changes = dict(changes)
        if others == "remove":
            for config in current:
                if config["is_override"] and not config["sensitive"]:
                    changes.setdefault(config["name"], None)
        sensitive = {c["name"] for c in current if c["sensitive"] and c["is_override"]}
        if sensitive - set(changes):
            # Its value is never returned, so it cannot be sent back unchanged.
            names = ", ".join(sorted(sensitive - set(changes)))
            raise PlanError(f"configs: the topic has sensitive overrides ({names}); give them")
        wanted = dict(before)
        wanted.update(changes)
        overrides = {k: v for k, v in wanted.items() if v is not None}
        resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=overrides)
        responses = await admin.alter_configs([resource])
    for response in responses:
        for entry in response.resources:
            refuse_on_error(entry[0], entry[1], f"change the configs of {name}")
    return before


async def add_partitions(cluster: ClusterConfig, name: str, total: int) -> int:
    """Grow the topic to `total` partitions; returns how many it had."""
    async with admin_client(cluster) as admin:
        found = await existing(admin, name)
        before = len(found.get("partitions", []))
        if total <= before:
            raise PlanError(f"partitions: the topic has {before}; a topic only grows")
        response = await admin.create_partitions({name: NewPartitions(total)})
    for entry in response.topic_errors:
        refuse_on_error(entry[1], entry[2], f"add partitions to {name}")
    return before


async def delete_records(cluster: ClusterConfig, name: str, partition: int, before: int) -> int:
    """Delete the partition's records before offset `before`; returns the new log start."""
    async with admin_client(cluster) as admin:
        found = await existing(admin, name)
        count = len(found.get("partitions", []))
        if partition >= count:
            raise PlanError(f"partition: topic {name} has partitions 0 to {count - 1}")
        tp = TopicPartition(name, partition)
        try:
            result = await admin.delete_records({tp: RecordsToDelete(before)})
        except KafkaError as exc:  # e.g. an offset past the partition's end
            raise PlanError(f"Kafka refused to delete records: {type(exc).__name__}") from None
    low_watermark: int = result[tp]
    return low_watermark


async def existing(admin: AIOKafkaAdminClient, name: str) -> dict[str, Any]:
    """The topic's metadata (partitions...), asked without creating it; PlanError when
    there is no such topic."""
    described = await describe_existing_topics(admin, [name])
    found = next((t for t in described if t.get("topic") == name), None)
    if found is None or found.get("error_code", 0) != 0:
        raise PlanError(f"topic: there is no topic {name!r} in this cluster")
    return found


async def max_message_bytes(admin: AIOKafkaAdminClient, name: str) -> int:
    """The largest record batch the topic accepts (its override, or the broker's value)."""
    for config in await _configs(admin, name):
        if config["name"] == "max.message.bytes" and (config["value"] or "").isdigit():
            return int(config["value"] or 0)
    return DEFAULT_MAX_MESSAGE_BYTES


async def _configs(admin: AIOKafkaAdminClient, name: str) -> list[ConfigJson]:
    return await describe_configs(admin, ConfigResourceType.TOPIC, name)
