"""Poison pills: when the lag rules say a group is stopped or stalled on a partition, the
record at its committed offset is the one it has not got past. This finds that record in
the index and every other copy of the same event (retry topics, dead-letter topics, the
original), oldest first, so that the group page can say in one sentence what is wrong:
"stuck at orders/3@1234: this record, failing since 02:14 with NullPointerException".

Read-only and bounded: at most MAX_PARTITIONS partitions per group, MAX_ATTEMPTS copies
each, through the index's coordinate and event-id look-ups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine
from typing_extensions import TypedDict

from console.payload_view import display_key
from console.stores import events as event_store
from console.web import urls

STUCK_STATUSES = ("STOP", "STALL")
MAX_PARTITIONS = 10
MAX_ATTEMPTS = 20
MAX_MESSAGE_CHARS = 500
SENTENCE_REASON_CHARS = 160


class AttemptJson(TypedDict):
    topic: str
    partition: int
    offset: int
    time: str
    kind: str  # original, retry or dead letter
    error_class: str | None
    error_message: str | None
    link: str


class StuckJson(TypedDict):
    topic: str
    partition: int
    offset: int  # the committed offset: the next record the group reads
    status: str
    indexed: bool  # False: the record is not in the index (not tapped, or expired)
    event_type: str | None
    event_id: str | None
    key: str | None
    time: str | None
    link: str
    trace_link: str | None
    attempts: list[AttemptJson]
    failing_since: str | None
    error_class: str | None
    sentence: str


def stuck_partitions(partitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group's partitions stopped or stalled with lag and a committed offset."""
    found = [
        p for p in partitions
        if p.get("status") in STUCK_STATUSES and (p.get("lag") or 0) > 0
        and isinstance(p.get("committed_offset"), int) and isinstance(p.get("topic"), str)
        and isinstance(p.get("partition"), int)
    ]  # fmt: skip
    return found[:MAX_PARTITIONS]


def _kind(row: Mapping[str, Any]) -> str:
    if row.get("is_dlq"):
        return "dead letter"
    topic = str(row.get("topic") or "")
    if row.get("dlq_attempts") or "retry" in topic.rsplit(".", 1)[-1].lower():
        return "retry"
    return "original"


def _attempt(row: Mapping[str, Any]) -> AttemptJson:
    message = row.get("dlq_error_message")
    return AttemptJson(
        topic=row["topic"], partition=row["partition"], offset=row["offset"],
        time=event_store.format_time(row["timestamp_ms"]), kind=_kind(row),
        error_class=row.get("dlq_error_class"),
        error_message=str(message)[:MAX_MESSAGE_CHARS] if message else None,
        link=urls.event(row["cluster"], row["topic"], row["partition"], row["offset"]),
    )  # fmt: skip


def find(
    engine: Engine,
    cluster: str,
    group: str,
    partitions: list[dict[str, Any]],
    mask: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[StuckJson]:
    """For each stuck partition, its record and the attempts at it (masked for the caller)."""
    found: list[StuckJson] = []
    for part in stuck_partitions(partitions):
        topic, partition, offset = part["topic"], part["partition"], part["committed_offset"]
        where = f"{topic}/{partition}@{offset}"
        row = event_store.get_event(engine, cluster, topic, partition, offset)
        link = urls.event(cluster, topic, partition, offset)
        if row is None:
            found.append(StuckJson(
                topic=topic, partition=partition, offset=offset, status=part["status"],
                indexed=False, event_type=None, event_id=None, key=None, time=None, link=link,
                trace_link=None, attempts=[], failing_since=None, error_class=None,
                sentence=f"{group} is stuck at {where}; that record is not in the index "
                         "(its topic is not tapped, or it expired).",
            ))  # fmt: skip
            continue
        row = mask(row)
        attempts: list[AttemptJson] = []
        if row.get("event_id"):
            search = event_store.parse_filter({"cluster": cluster, "event_id": row["event_id"],
                                               "limit": str(MAX_ATTEMPTS)})  # fmt: skip
            copies = event_store.search_events(engine, search).events
            attempts = [_attempt(mask(copy)) for copy in reversed(copies)]  # oldest first
        failures = [a for a in attempts if a["kind"] != "original" or a["error_class"]]
        latest = next((a for a in reversed(failures) if a["error_class"]), None)
        error = latest["error_class"] if latest else None
        why = latest["error_message"] if latest else None
        since = failures[0]["time"] if failures else None
        reference = row.get("correlation_id") or row.get("trace_id")
        sentence = f"{group} is stuck at {where}: this record"
        if row.get("event_type"):
            sentence += f" ({row['event_type']})"
        if since:
            sentence += f", failing since {since}"
            sentence += f" with {error}" if error else f" ({len(failures)} retries or dead letters)"
            sentence += f": {why[:SENTENCE_REASON_CHARS]}" if why else ""
        found.append(StuckJson(
            topic=topic, partition=partition, offset=offset, status=part["status"],
            indexed=True, event_type=row.get("event_type"), event_id=row.get("event_id"),
            key=_key(row), time=event_store.format_time(row["timestamp_ms"]),
            link=link, trace_link=urls.trace(reference) if reference else None,
            attempts=attempts, failing_since=since, error_class=error, sentence=sentence + ".",
        ))  # fmt: skip
    return found


def _key(row: Mapping[str, Any]) -> str | None:
    key = row.get("key")
    return display_key(key, row.get("decoded_key")) if key is not None else None
