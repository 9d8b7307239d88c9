"""One look at a cluster's consumer groups, read from Kafka: each group's state and members
(with the partitions assigned to each), its committed offsets, and the begin and end
offsets of those partitions. Nothing is judged or written here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
)
from aiokafka.protocol.api import Request

from collectors.kafka.admin import begin_and_end_offsets, describe_existing_topics

log = logging.getLogger("eventscope.lag")

DESCRIBE_BATCH = 100  # groups per DescribeGroups request
CONCURRENCY = 32  # offset fetches in flight
MAX_ASSIGNED_PARTITIONS = 100_000  # per member: a bigger assignment is not believed

Key = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str

    def as_json(self) -> dict[str, str]:
        return {"member_id": self.member_id, "client_id": self.client_id, "host": self.host}


@dataclass(slots=True)
class GroupLook:
    group_id: str
    state: str
    protocol_type: str
    members: list[Member] = field(default_factory=list)
    owners: dict[Key, Member] = field(default_factory=dict)
    committed: dict[Key, int] = field(default_factory=dict)


@dataclass(slots=True)
class ClusterLook:
    time: float
    groups: list[GroupLook]
    end_offsets: dict[Key, int]
    begin_offsets: dict[Key, int]


class _DescribeGroupsUpToV2(
    Request[DescribeGroupsRequest_v0 | DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2]
):
    """DescribeGroups pinned to v0-v2.

    aiokafka 0.14 parses a v3 answer with the v2 layout, which misreads every group after
    the first when several are asked at once; v2 carries everything the sampler needs.
    """

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class(self.groups)


def decode_assignment(protocol_type: str, raw: object) -> list[Key]:
    """Partitions in a member's assignment; [] when it is not the consumer protocol or bad."""
    if protocol_type != "consumer" or not isinstance(raw, bytes | bytearray) or not raw:
        return []
    try:
        decoded = ConsumerProtocolMemberAssignment.decode(bytes(raw))
        partitions = [
            (str(topic), int(partition))
            for topic, numbers in decoded.assignment
            for partition in numbers
        ]
    except Exception:  # another client's protocol, or garbage: no owner shown
        return []
    return partitions if len(partitions) <= MAX_ASSIGNED_PARTITIONS else []


def _text(value: object, cap: int = 500) -> str:
    return value[:cap] if isinstance(value, str) else ""


async def read_groups(
    admin: AIOKafkaAdminClient,
    exclude: frozenset[str],
    coordinators: dict[str, int],
) -> list[GroupLook]:
    """Every consumer group with its state, members, owners and committed offsets.

    ``coordinators`` caches the coordinator of each group between looks; an entry is
    dropped when its coordinator stops answering for the group.
    """
    listed = await admin.list_consumer_groups()
    group_ids = sorted(
        {
            entry[0]
            for entry in listed
            if len(entry) >= 2 and isinstance(entry[0], str) and entry[1] in ("consumer", "")
        }
        - exclude
    )
    limit = asyncio.Semaphore(CONCURRENCY)

    async def find(group_id: str) -> None:
        async with limit:
            with contextlib.suppress(Exception):  # retried at the next look
                coordinators[group_id] = await admin.find_coordinator(group_id)

    await asyncio.gather(*(find(g) for g in group_ids if g not in coordinators))
    by_node: dict[int, list[str]] = defaultdict(list)
    for group_id in group_ids:
        if group_id in coordinators:
            by_node[coordinators[group_id]].append(group_id)

    looks: dict[str, GroupLook] = {}
    for node, ids in by_node.items():
        for start in range(0, len(ids), DESCRIBE_BATCH):
            chunk = ids[start : start + DESCRIBE_BATCH]
            try:
                response = await admin._client.send(node, _DescribeGroupsUpToV2(chunk))
            except Exception as exc:
                log.warning("describing %d groups at node %s failed: %s", len(chunk), node, exc)
                for group_id in chunk:
                    coordinators.pop(group_id, None)
                continue
            wanted = set(chunk)
            for entry in response.groups:
                look = _group_look(entry, wanted)
                if look is None:
                    if len(entry) > 1 and entry[1] in wanted:
                        coordinators.pop(entry[1], None)
                    continue
                looks[look.group_id] = look

    async def fetch_offsets(look: GroupLook) -> None:
        async with limit:
            try:
                offsets = await admin.list_consumer_group_offsets(
                    look.group_id, group_coordinator_id=coordinators.get(look.group_id)
                )
            except Exception as exc:
                log.debug("offsets of %s: %s", look.group_id, exc)
                coordinators.pop(look.group_id, None)
                return
        for tp, meta in offsets.items():
            if isinstance(meta.offset, int) and meta.offset >= 0:
                look.committed[(tp.topic, tp.partition)] = meta.offset

    await asyncio.gather(*(fetch_offsets(look) for look in looks.values()))
    return [looks[g] for g in sorted(looks)]


def _group_look(entry: Sequence[Any], wanted: set[str]) -> GroupLook | None:
    try:
        error_code, group_id, state, protocol_type, _protocol, members = entry[:6]
    except (TypeError, ValueError):
        return None
    if error_code != 0 or group_id not in wanted:
        return None
    look = GroupLook(group_id, _text(state, 40), _text(protocol_type, 40))
    for raw in members if isinstance(members, list) else []:
        try:
            member_id, client_id, host, _metadata, assignment = raw[:5]
        except (TypeError, ValueError):
            continue
        member = Member(_text(member_id), _text(client_id), _text(host).lstrip("/"))
        look.members.append(member)
        for key in decode_assignment(look.protocol_type, assignment):
            look.owners[key] = member
    return look


async def read_partition_offsets(
    admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer, keys: Iterable[Key]
) -> tuple[dict[Key, int], dict[Key, int]]:
    """Begin and end offsets of the partitions among ``keys`` that still exist."""
    wanted = set(keys)
    if not wanted:
        return {}, {}
    topics = sorted({topic for topic, _ in wanted})
    described = await describe_existing_topics(admin, topics)
    existing = [
        TopicPartition(raw["topic"], part["partition"])
        for raw in described
        if raw.get("error_code", 0) == 0
        for part in raw.get("partitions", [])
        if (raw["topic"], part["partition"]) in wanted
    ]
    if not existing:
        return {}, {}
    begin, end = await begin_and_end_offsets(reader, existing)
    return (
        {(tp.topic, tp.partition): offset for tp, offset in begin.items()},
        {(tp.topic, tp.partition): offset for tp, offset in end.items()},
    )


async def look_at_group(admin: AIOKafkaAdminClient, group_id: str) -> GroupLook | None:
    """One group's state, members and committed offsets, as they are now (None when its
    coordinator cannot be found). Kafka describes a group it does not know as "Dead"."""
    try:
        node = await admin.find_coordinator(group_id)
    except Exception as exc:
        log.debug("no coordinator for %s: %s", group_id, exc)
        return None
    response = await admin._client.send(node, _DescribeGroupsUpToV2([group_id]))
    look = next(
        (look for entry in response.groups if (look := _group_look(entry, {group_id}))), None
    )
    if look is None:
        return None
    offsets = await admin.list_consumer_group_offsets(group_id, group_coordinator_id=node)
    for tp, meta in offsets.items():
        if isinstance(meta.offset, int) and meta.offset >= 0:
            look.committed[(tp.topic, tp.partition)] = meta.offset
    return look
