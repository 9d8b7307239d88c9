"""Deleting a consumer group's committed offsets for one topic, as Kafka's own
`kafka-consumer-groups --delete-offsets` does (OffsetDelete, API key 47).

aiokafka's admin client has no call for it: the version 0 request and response (not
flexible) are declared here with aiokafka's protocol types and sent to the group's
coordinator. Kafka deletes a partition's offset unless an active member of the group is
subscribed to the topic (GROUP_SUBSCRIBED_TO_TOPIC, per partition); a group with members
that is not a consumer group is refused whole (NON_EMPTY_GROUP). The offsets are read
before and after, so each partition reports what was committed and what Kafka holds now.
"""

from __future__ import annotations

from typing import Any

from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client
from collectors.kafka.lag_look import GroupLook, Member, look_at_group
from console.operations.fields import PlanError, refuse_on_error
from console.operations.group_offsets import MEMBERS_NAMED

NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
GROUP_SUBSCRIBED_TO_TOPIC = 86  # aiokafka has no class for it (it reads as UnknownError)
TOPICS_NAMED = 20


class OffsetDeleteResponse_v0(Response):
    API_KEY = 47
    API_VERSION = 0
    SCHEMA = Schema(
        ("error_code", Int16),
        ("throttle_time_ms", Int32),
        (
            "topics",
            Array(
                ("name", String("utf-8")),
                ("partitions", Array(("partition_index", Int32), ("error_code", Int16))),
            ),
        ),
    )


class OffsetDeleteRequest_v0(RequestStruct):
    API_KEY = 47
    API_VERSION = 0
    RESPONSE_TYPE = OffsetDeleteResponse_v0
    SCHEMA = Schema(
        ("group_id", String("utf-8")),
        (
            "topics",
            Array(
                ("name", String("utf-8")),
                ("partitions", Array(Schema(("partition_index", Int32)))),
            ),
        ),
    )


class OffsetDeleteRequest(Request[OffsetDeleteRequest_v0]):
    API_KEY = 47

    def __init__(self, group: str, topic: str, partitions: list[int]) -> None:
        self._group, self._topic, self._partitions = group, topic, partitions

    def build(self, request_struct_class: type[OffsetDeleteRequest_v0]) -> Any:
        partitions = [(number,) for number in self._partitions]
        return request_struct_class(self._group, [(self._topic, partitions)])


class NotFound(PlanError):
    """No such group, or the group has no committed offset for the topic."""


class PartitionDeletedJson(TypedDict):
    partition: int
    before: int  # the offset that was committed
    after: int | None  # what Kafka holds afterwards (None: no committed offset)
    error: str | None  # Kafka's refusal for this partition


class OffsetDeleteResultJson(TypedDict):
    cluster: str
    group: str
    topic: str
    partitions: list[PartitionDeletedJson]
    deleted: int  # partitions whose offset is gone
    error: str | None  # some partitions kept their offset, and why


def error_name(code: int) -> str:
    if code == GROUP_SUBSCRIBED_TO_TOPIC:
        return "GroupSubscribedToTopic"
    return str(for_code(code).__name__)


def _named(members: list[Member]) -> str:
    shown = "; ".join(
        f"{m.client_id or '(no client id)'} on {m.host or '?'} ({m.member_id})"
        for m in members[:MEMBERS_NAMED]
    )
    more = len(members) - MEMBERS_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def subscribed_refusal(look: GroupLook, topic: str) -> str:
    """Kafka's GROUP_SUBSCRIBED_TO_TOPIC in words, naming the members reading the topic
    (every member when the assignments cannot be read)."""
    readers = {m.member_id: m for key, m in look.owners.items() if key[0] == topic}
    members = list(readers.values()) or look.members
    return (
        f"Kafka refused: group {look.group_id} has {len(members)} active member(s) subscribed "
        f"to topic {topic}: {_named(members)}. Kafka deletes a topic's offsets only when no "
        f"consumer of the group reads it: stop these consumers (or remove {topic} from their "
        "subscription), then delete."
    )


def _committed(look: GroupLook | None, topic: str) -> dict[int, int]:
    return {p: o for (t, p), o in (look.committed if look else {}).items() if t == topic}


async def delete_offsets(cluster: ClusterConfig, group: str, topic: str) -> OffsetDeleteResultJson:
    """Delete the group's committed offsets for every partition of `topic`. NotFound for an
    unknown group or a topic without offsets; PlanError for Kafka's refusal, in words."""
    async with admin_client(cluster) as admin:
        look = await look_at_group(admin, group)
        if look is None:
            raise RuntimeError(f"cannot find the coordinator of group {group}")
        before = _committed(look, topic)
        if look.state == "Dead" and not look.committed:
            raise NotFound(f"group: there is no consumer group {group!r} in cluster {cluster.name}")
        if not before:
            others = sorted({t for t, _ in look.committed})
            has = ", ".join(others[:TOPICS_NAMED]) + (" …" if len(others) > TOPICS_NAMED else "")
            raise NotFound(
                f"topic: group {group} has no committed offsets for topic {topic!r} "
                f"({'it has offsets for ' + has if others else 'it has none'})"
            )
        node = await admin.find_coordinator(group)
        response = await admin._client.send(node, OffsetDeleteRequest(group, topic, sorted(before)))
        if response.error_code == GROUP_ID_NOT_FOUND:
            raise NotFound(f"group: there is no consumer group {group!r} in cluster {cluster.name}")
        if response.error_code == NON_EMPTY_GROUP:
            raise PlanError(
                f"Kafka refused (NonEmptyGroup): group {group} has {len(look.members)} active "
                f"member(s) and is not a consumer group whose subscriptions Kafka can check: "
                f"{_named(look.members)}. Stop them, then delete."
            )
        refuse_on_error(response.error_code, None, f"delete the offsets of group {group}")
        codes = {
            number: code
            for name, partitions in response.topics
            if name == topic
            for number, code in partitions
        }
        after = _committed(await look_at_group(admin, group), topic)
    rows = [
        PartitionDeletedJson(
            partition=number, before=offset, after=after.get(number),
            error=error_name(codes[number]) if codes.get(number) else None,
        )
        for number, offset in sorted(before.items())
    ]  # fmt: skip
    deleted = sum(1 for row in rows if row["after"] is None)
    refused = sorted({row["error"] for row in rows if row["error"]})
    if refused and deleted == 0:
        if "GroupSubscribedToTopic" in refused:
            raise PlanError(subscribed_refusal(look, topic))
        raise PlanError(
            f"Kafka refused to delete the offsets of group {group} for topic {topic}: "
            + ", ".join(refused)
        )
    kept = len(rows) - deleted
    error = f"{kept} partition(s) kept their offset ({', '.join(refused) or 'no error given'})"
    return OffsetDeleteResultJson(
        cluster=cluster.name, group=group, topic=topic, partitions=rows, deleted=deleted,
        error=error if kept else None,
    )  # fmt: skip


def as_audit_detail(result: OffsetDeleteResultJson) -> dict[str, Any]:
    """Before and after per partition, for the audit row."""
    return {
        "topic": result["topic"], "deleted": result["deleted"], "error": result["error"],
        "partitions": [
            {"partition": p["partition"], "before": p["before"], "after": p["after"],
             "error": p["error"]}
            for p in result["partitions"]
        ][:1000],
    }  # fmt: skip
