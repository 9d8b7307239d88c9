"""Resetting a consumer group's offsets: the request, and what it would do per partition.

Pure: the Kafka side (console/operations/group_offsets.py) reads the group's committed
offsets, the partitions' begin and end offsets and, for a time or another group, what
those point at; this module turns a request into a plan. The rules are those of Kafka's
`kafka-consumer-groups --reset-offsets`: a target outside the partition's log is clamped to
its start or end (and the plan says so), a shift needs a committed offset to shift from,
and a time finds the first record at or after it (the end when there is none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import TypedDict

from console.operations.fields import PlanError, field_text, parse_time

STRATEGIES = {
    "earliest": "the oldest record still in each partition",
    "latest": "the end of each partition (skip everything waiting)",
    "timestamp": "the first record at or after a time",
    "offset": "one offset, for every chosen partition",
    "shift": "the committed offset moved by N (negative: back)",
    "group": "the offsets another group has committed",
}
MAX_PARTITIONS_LISTED = 1_000
MAX_NAME = 249  # Kafka's limit for topic names; group ids get the same cap here

Key = tuple[str, int]


@dataclass(frozen=True)
class ResetRequest:
    cluster: str
    group: str
    strategy: str
    value: str = ""  # the time, offset, shift or group, as typed
    topic: str = ""  # empty: every topic the group has offsets for
    partitions: tuple[int, ...] = ()  # with a topic: only these (empty: all of it)

    def describe(self) -> str:
        where = f"topic {self.topic}" if self.topic else "all its topics"
        if self.partitions:
            where += " partitions " + ", ".join(str(p) for p in self.partitions)
        value = f" {self.value}" if self.value else ""
        return f"to {self.strategy}{value} on {where}"


def parse_request(raw: Mapping[str, Any], clusters: Sequence[str], group: str) -> ResetRequest:
    """A form, a query string or a JSON body as a ResetRequest; PlanError says what is wrong."""
    cluster = field_text(raw.get("cluster")) or (clusters[0] if len(clusters) == 1 else "")
    if cluster not in clusters:
        raise PlanError(f"cluster: one of {', '.join(clusters)}")
    if not group or len(group) > MAX_NAME:
        raise PlanError("group: a consumer group id of 1 to 249 characters")
    strategy = field_text(raw.get("strategy"))
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy: one of {', '.join(STRATEGIES)}")
    value = field_text(raw.get("value"))
    if strategy in ("timestamp", "offset", "shift", "group") and not value:
        raise PlanError(f"value: {strategy} needs one ({STRATEGIES[strategy]})")
    if strategy == "timestamp":
        parse_time(value)
    elif strategy == "offset" and not (value.isdigit() and int(value) < 2**63):
        raise PlanError("value: an offset is a whole number of 0 or more")
    elif strategy == "shift":
        try:
            if int(value) == 0 or abs(int(value)) >= 2**63:
                raise ValueError
        except ValueError:
            raise PlanError("value: a shift is a whole number other than 0, e.g. -100") from None
    elif strategy == "group" and (len(value) > MAX_NAME or value == group):
        raise PlanError("value: another consumer group's id")
    topic = field_text(raw.get("topic"))
    if len(topic) > MAX_NAME:
        raise PlanError("topic: at most 249 characters")
    partitions = _partitions(raw.get("partitions"))
    if partitions and not topic:
        raise PlanError("partitions: choose a topic first")
    return ResetRequest(cluster, group, strategy, value, topic, partitions)


def _partitions(raw: Any) -> tuple[int, ...]:
    """A list of numbers, or text such as "0, 2, 5"."""
    if raw is None or raw == "":
        return ()
    items = raw.replace(",", " ").split() if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or len(items) > MAX_PARTITIONS_LISTED:
        raise PlanError("partitions: numbers such as 0, 2, 5")
    numbers = set()
    for item in items:
        text = str(item).strip()
        if not text.isdigit() or int(text) >= 2**31:
            raise PlanError(f"partitions: {text!r} is not a partition number")
        numbers.add(int(text))
    return tuple(sorted(numbers))


class PartitionPlanJson(TypedDict):
    topic: str
    partition: int
    current: int | None
    begin: int
    end: int
    new: int | None  # None: left as it is
    lag_before: int | None
    lag_after: int | None
    reconsumed: int  # records the group will read again
    skipped: int  # records the group will never read
    note: str | None


@dataclass(frozen=True)
class Targets:
    """What Kafka said, for the partitions in play."""

    committed: Mapping[Key, int]
    begin: Mapping[Key, int]
    end: Mapping[Key, int]
    by_time: Mapping[Key, int | None] = field(default_factory=dict)  # None: no record since
    other_group: Mapping[Key, int] = field(default_factory=dict)


def plan(
    request: ResetRequest, partitions: Sequence[Key], kafka: Targets
) -> list[PartitionPlanJson]:
    """Per partition: where the group is, where it would be, and what that means."""
    rows = []
    for key in sorted(partitions):
        begin, end = kafka.begin.get(key, 0), kafka.end.get(key, 0)
        current = kafka.committed.get(key)
        wanted, note = _target(request, key, current, end, kafka)
        new = None
        if wanted is not None:
            new = min(max(wanted, begin), end)
            if new != wanted:
                where = "start" if new == begin else "end"
                note = f"{wanted} is outside the log: the partition's {where}, {new}"
        rows.append(
            PartitionPlanJson(
                topic=key[0], partition=key[1], current=current, begin=begin, end=end, new=new,
                lag_before=None if current is None else max(0, end - current),
                lag_after=None if new is None else end - new,
                reconsumed=max(0, current - new) if current is not None and new is not None else 0,
                skipped=max(0, new - current) if current is not None and new is not None else 0,
                note=note,
            )
        )  # fmt: skip
    return rows


def _target(
    request: ResetRequest, key: Key, current: int | None, end: int, kafka: Targets
) -> tuple[int | None, str | None]:
    strategy = request.strategy
    if strategy == "earliest":
        return kafka.begin.get(key, 0), None
    if strategy == "latest":
        return end, None
    if strategy == "offset":
        return int(request.value), None
    if strategy == "shift":
        if current is None:
            return None, "no committed offset to shift from: left as it is"
        return current + int(request.value), None
    if strategy == "timestamp":
        found = kafka.by_time.get(key)
        return (end, "no record at or after that time: the end") if found is None else (found, None)
    other = kafka.other_group.get(key)
    if other is None:
        return None, f"group {request.value} has no offset here: left as it is"
    return other, None


def totals(rows: Sequence[PartitionPlanJson]) -> dict[str, int]:
    changed = [r for r in rows if r["new"] is not None and r["new"] != r["current"]]
    return {
        "partitions": len(rows),
        "changed": len(changed),
        "reconsumed": sum(r["reconsumed"] for r in rows),
        "skipped": sum(r["skipped"] for r in rows),
    }
