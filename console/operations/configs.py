"""A resource's configs as Kafka describes them (DescribeConfigs): a topic's on its settings
page, a broker's on its page. Each config has its value, where that value comes from, and
whether it is read-only; a sensitive value is never kept (Kafka sends none, and one it
sent would be dropped here), so no page or answer can show it."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typing_extensions import TypedDict

from console.operations.fields import refuse_on_error

# DescribeConfigs' config_source, in words.
SOURCES = {
    1: "topic override", 2: "broker (dynamic)", 3: "default broker (dynamic)",
    4: "broker (static)", 5: "default", 6: "broker logger", 7: "client metrics", 8: "group",
}  # fmt: skip
# The source of a resource's own override: a topic's, or one broker's dynamic config.
OWN_SOURCE = {ConfigResourceType.TOPIC: 1, ConfigResourceType.BROKER: 2}
MAX_QUERY = 100


class ConfigJson(TypedDict):
    name: str
    value: str | None  # None when sensitive
    source: str
    is_override: bool
    read_only: bool
    sensitive: bool


async def describe(
    admin: AIOKafkaAdminClient, kind: ConfigResourceType, name: str
) -> list[ConfigJson]:
    """Every config of the topic or broker `name` (a broker by its id), sorted by name;
    Kafka's refusal as a PlanError."""
    label = f"broker {name}" if kind == ConfigResourceType.BROKER else name
    responses = await admin.describe_configs([ConfigResource(kind, name)])
    found: list[ConfigJson] = []
    for response in responses:
        for resource in response.resources:
            refuse_on_error(resource[0], resource[1], f"describe the configs of {label}")
            for entry in resource[4]:
                config_name, value, read_only, source, sensitive = entry[:5]
                found.append(
                    ConfigJson(
                        name=config_name, value=None if sensitive else value,
                        source=SOURCES.get(source, str(source)),
                        is_override=source == OWN_SOURCE[kind], read_only=bool(read_only),
                        sensitive=bool(sensitive),
                    )
                )  # fmt: skip
    return sorted(found, key=lambda c: c["name"])


def named(configs: list[ConfigJson], query: str) -> list[ConfigJson]:
    """The configs whose name contains `query` (case-insensitive; capped, blank: all)."""
    wanted = query.strip()[:MAX_QUERY].lower()
    return [c for c in configs if wanted in c["name"].lower()]
