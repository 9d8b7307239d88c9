"""Changing a consumer group in Kafka: previewing and applying an offset reset, deleting
the group. The plan itself is pure (offset_plan.py); this module asks Kafka and acts.

Kafka changes a group's offsets only while the group has no active members (its consumers
would overwrite them at their next commit), so a preview names the members that block it
and applying refuses while there are any. Offsets are committed the way Kafka's own tools
do it: by a client that joins no group (generation -1), for exactly the partitions that
change. Afterwards the committed offsets are read back, so each partition reports what
Kafka holds, not what was asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DeleteGroupsRequest
from aiokafka.structs import OffsetAndMetadata
from typing_extensions import TypedDict

from collectors.config import ClusterConfig
from collectors.kafka.admin import (
    admin_client,
    begin_and_end_offsets,
    client_options,
    offsets_reader,
)
from collectors.kafka.lag_look import GroupLook, Key, Member, look_at_group
from console.operations import topics
from console.operations.fields import PlanError, parse_time, refuse_on_error
from console.operations.offset_plan import PartitionPlanJson, ResetRequest, Targets, plan, totals

MEMBERS_NAMED = 20


class MemberJson(TypedDict):
    member_id: str
    client_id: str
    host: str


class ResetPreviewJson(TypedDict):
    cluster: str
    group: str
    state: str
    members: list[MemberJson]
    blocked: str | None  # why it cannot be applied now
    summary: str  # what was asked, in words
    partitions: list[PartitionPlanJson]
    totals: dict[str, int]


class PartitionOutcomeJson(PartitionPlanJson):
    outcome: str  # "reset", "unchanged" or "failed"
    committed_after: int | None


class ResetResultJson(TypedDict):
    cluster: str
    group: str
    summary: str  # what was asked, in words
    partitions: list[PartitionOutcomeJson]
    totals: dict[str, int]
    error: str | None


@dataclass
class _Read:
    look: GroupLook | None
    partitions: list[Key]
    kafka: Targets = field(default_factory=lambda: Targets({}, {}, {}))


def blocked_by(look: GroupLook | None, group: str) -> str | None:
    """Why Kafka would refuse to change the group's offsets now, naming who is in the way."""
    if look is None or not look.members:
        return None
    named = "; ".join(
        f"{m.client_id or '(no client id)'} on {m.host or '?'} ({m.member_id})"
        for m in look.members[:MEMBERS_NAMED]
    )
    more = len(look.members) - MEMBERS_NAMED
    extra = f" and {more} more" if more > 0 else ""
    return (
        f"Group {group} has {len(look.members)} active member(s): {named}{extra}. Kafka changes "
        "a group's offsets only while no consumer is in it: stop these consumers (or wait "
        "until they have left the group), then reset."
    )


async def preview(cluster: ClusterConfig, request: ResetRequest) -> ResetPreviewJson:
    async with admin_client(cluster) as admin, offsets_reader(cluster) as reader:
        read = await _read(admin, reader, request)
    rows = plan(request, read.partitions, read.kafka)
    return ResetPreviewJson(
        cluster=cluster.name, group=request.group,
        state=read.look.state if read.look else "unknown",
        members=[_member(m) for m in (read.look.members if read.look else [])],
        blocked=blocked_by(read.look, request.group), summary=request.describe(),
        partitions=rows, totals=totals(rows),
    )  # fmt: skip


async def apply(cluster: ClusterConfig, request: ResetRequest) -> ResetResultJson:
    """Plan again from what Kafka says now, commit what changes, read back what it holds."""
    async with admin_client(cluster) as admin, offsets_reader(cluster) as reader:
        read = await _read(admin, reader, request)
        blocked = blocked_by(read.look, request.group)
        if blocked:
            raise PlanError(blocked)
        rows = plan(request, read.partitions, read.kafka)
        changes = {
            TopicPartition(r["topic"], r["partition"]): OffsetAndMetadata(r["new"], "")
            for r in rows
            if r["new"] is not None and r["new"] != r["current"]
        }
        error = await _commit(cluster, request.group, changes) if changes else None
        after_look = await look_at_group(admin, request.group)
    after = after_look.committed if after_look else {}
    outcomes = [_outcome(row, after) for row in rows]
    failed = sum(1 for o in outcomes if o["outcome"] == "failed")
    if failed and error is None:
        error = f"{failed} partition(s) do not hold the new offset"
    return ResetResultJson(
        cluster=cluster.name, group=request.group, summary=request.describe(),
        partitions=outcomes, totals=totals(rows), error=error,
    )  # fmt: skip


async def delete_group(cluster: ClusterConfig, group: str) -> None:
    """Delete the group and its committed offsets; PlanError with Kafka's refusal."""
    async with admin_client(cluster) as admin:
        look = await look_at_group(admin, group)
        blocked = blocked_by(look, group)
        if blocked:
            raise PlanError(blocked.replace("then reset", "then delete it"))
        node = await admin.find_coordinator(group)
        # aiokafka's admin client has no call for DeleteGroups; the request is its own.
        response = await admin._client.send(node, DeleteGroupsRequest([group]))
    for name, code in response.results:
        if name == group:
            refuse_on_error(code, None, f"delete group {group}")


async def _read(
    admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer, request: ResetRequest
) -> _Read:
    look = await look_at_group(admin, request.group)
    committed = look.committed if look else {}
    if request.topic:
        partitions = await _topic_partitions(admin, request.topic, request.partitions)
    else:
        partitions = sorted(committed)
        if not partitions:
            raise PlanError(
                f"group {request.group} has no committed offsets: choose the topic to set"
            )
    tps = [TopicPartition(topic, number) for topic, number in partitions]
    begin, end = await begin_and_end_offsets(reader, tps)
    kafka = Targets(
        committed=committed,
        begin={(tp.topic, tp.partition): o for tp, o in begin.items()},
        end={(tp.topic, tp.partition): o for tp, o in end.items()},
    )
    if request.strategy == "timestamp":
        at = parse_time(request.value)
        found = await reader.offsets_for_times({tp: at for tp in tps})
        by_time = {(tp.topic, tp.partition): (o.offset if o else None) for tp, o in found.items()}
        kafka = Targets(kafka.committed, kafka.begin, kafka.end, by_time=by_time)
    elif request.strategy == "group":
        other = await look_at_group(admin, request.value)
        kafka = Targets(
            kafka.committed, kafka.begin, kafka.end, other_group=other.committed if other else {}
        )
    return _Read(look, partitions, kafka)


async def _topic_partitions(
    admin: AIOKafkaAdminClient, topic: str, chosen: Sequence[int]
) -> list[Key]:
    found = await topics.existing(admin, topic)
    numbers = sorted(p["partition"] for p in found.get("partitions", []))
    missing = sorted(set(chosen) - set(numbers))
    if missing:
        raise PlanError(
            f"partitions: topic {topic} has partitions 0 to {len(numbers) - 1}; "
            f"{', '.join(str(n) for n in missing)} do not exist"
        )
    return [(topic, n) for n in numbers if not chosen or n in chosen]


async def _commit(
    cluster: ClusterConfig, group: str, offsets: dict[TopicPartition, OffsetAndMetadata]
) -> str | None:
    """Commit as a client outside the group; Kafka's refusal in words, or None."""
    options = client_options(cluster)
    options["client_id"] = "eventscope-offsets"
    committer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
    try:
        await committer.start()
        committer.assign(list(offsets))
        await committer.commit(offsets)
    except Exception as exc:
        return f"Kafka refused the commit: {type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            await committer.stop()
    return None


def _outcome(row: PartitionPlanJson, after: dict[Key, int]) -> PartitionOutcomeJson:
    held = after.get((row["topic"], row["partition"]))
    if row["new"] is None or row["new"] == row["current"]:
        outcome = "unchanged"
    else:
        outcome = "reset" if held == row["new"] else "failed"
    return PartitionOutcomeJson(**row, outcome=outcome, committed_after=held)


def _member(member: Member) -> MemberJson:
    return MemberJson(member_id=member.member_id, client_id=member.client_id, host=member.host)


def as_audit_detail(result: ResetResultJson) -> dict[str, Any]:
    """Before and after per partition that changed, for the audit row."""
    return {
        "summary": result["summary"],
        "partitions": [
            {"topic": p["topic"], "partition": p["partition"], "before": p["current"],
             "after": p["committed_after"], "outcome": p["outcome"]}
            for p in result["partitions"] if p["outcome"] != "unchanged"
        ][:1000],
        "totals": result["totals"],
        "error": result["error"],
    }  # fmt: skip
