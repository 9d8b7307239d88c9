"""The learned event catalog as an AsyncAPI 3.0 document (JSON), for teams to check into
their repositories: the cluster as a Kafka server, each topic as a channel, each event type
as a message whose payload is the JSON Schema learned from its samples, and one `send`
operation per topic naming the producers that were seen.

Pure: the view gathers the catalog, this module only shapes it. Component and channel
keys must match AsyncAPI's `^[A-Za-z0-9_.-]+$`, so names are made safe (and unique).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ASYNCAPI_VERSION = "3.0.0"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class CatalogMessage:
    event_type: str
    topics: tuple[str, ...]
    producers: tuple[str, ...]
    payload: dict[str, Any]  # a JSON Schema
    example: Any | None = None  # a masked example payload


def safe_key(name: str, taken: set[str]) -> str:
    """`name` as an AsyncAPI map key, unique among `taken` (which it joins)."""
    base = _UNSAFE.sub("_", name).strip("_") or "unnamed"
    key, number = base[:200], 2
    while key in taken:
        key, number = f"{base[:190]}_{number}", number + 1
    taken.add(key)
    return key


def document(cluster: str, bootstrap: str, messages: Sequence[CatalogMessage],
             generated_at: str) -> dict[str, Any]:  # fmt: skip
    server = safe_key(cluster, set())
    message_keys: dict[str, str] = {}
    taken: set[str] = set()
    components: dict[str, Any] = {}
    for message in messages:
        key = message_keys[message.event_type] = safe_key(message.event_type, taken)
        body: dict[str, Any] = {
            "name": message.event_type[:200],
            "title": message.event_type[:200],
            "contentType": "application/json",
            "payload": message.payload,
        }
        if message.producers:
            body["description"] = "Produced by: " + ", ".join(message.producers[:20])
        if message.example is not None:
            body["examples"] = [{"name": "latest", "payload": message.example}]
        components[key] = body
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    channel_taken: set[str] = set()
    operation_taken: set[str] = set()
    topics = sorted({topic for message in messages for topic in message.topics})
    for topic in topics:
        channel = safe_key(topic, channel_taken)
        on_topic = [m for m in messages if topic in m.topics]
        channels[channel] = {
            "address": topic,
            "servers": [{"$ref": f"#/servers/{server}"}],
            "messages": {message_keys[m.event_type]: {
                "$ref": f"#/components/messages/{message_keys[m.event_type]}"}
                for m in on_topic},
        }  # fmt: skip
        producers = sorted({p for m in on_topic for p in m.producers})
        operations[safe_key(f"send_{topic}", operation_taken)] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": ("Seen from: " + ", ".join(producers[:20])) if producers
                       else "Producers not identified",
            "messages": [{"$ref": f"#/channels/{channel}/messages/{message_keys[m.event_type]}"}
                         for m in on_topic],
        }  # fmt: skip
    host = bootstrap.split(",")[0].strip()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"Events of cluster {cluster}",
            "version": generated_at,
            "description": "Learned by eventscope from the traffic it indexed: event types, "
                           "their topics, producers and payload shapes.",
        },
        "servers": {server: {"host": host, "protocol": "kafka"}},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": components},
    }  # fmt: skip
