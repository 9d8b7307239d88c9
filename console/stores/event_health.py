"""Event health: duplicate events and ordering breaks, read from the index on demand.

Every query is bounded twice: by the window (`timestamp_ms >= since`, the timestamp
index) and by the newest `max_rows` records of that window; a finding's copies are then
fetched through the segmented hash indexes (event id, key), a few hundred rows at most.
Nothing here runs on the ingest path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, case, false, func, or_, select

from collectors.index.identity import hashed_in, narrowing_only
from collectors.index.models import events_table, positions_table
from collectors.index.trace_models import spans_table
from collectors.traces import CONSUME_OPERATIONS, STATUS_ERROR
from console.event_health import (
    SequenceBreak,
    SequencedRecord,
    SequenceRule,
    copy_kind,
    is_retry_topic,
    read_sequence,
    sequence_breaks,
)

MAX_FINDINGS = 100  # findings listed per section (counts cover all)
MAX_COPIES = 20  # copies listed per duplicate
MAX_SEQUENCE_TOPICS = 20
COPY_ROWS = 5_000  # rows a finding's copies are read from, at most


@dataclass(frozen=True)
class Scope:
    since_ms: int
    max_rows: int
    cluster: str | None = None
    topic: str | None = None


@dataclass
class Copy:
    partition: int
    offset: int
    timestamp_ms: int
    source: str | None
    kind: str  # plain, retry or dead-letter


@dataclass
class CopyGroup:
    """One event id seen more than once on one topic."""

    cluster: str
    topic: str
    event_id: str
    copies: list[Copy]

    @property
    def plain(self) -> list[Copy]:
        return [copy for copy in self.copies if copy.kind == "plain"]


@dataclass
class DuplicateCount:
    cluster: str
    topic: str
    producer: str | None
    events: int  # event ids copied
    extra_copies: int


@dataclass
class Duplicates:
    groups: list[CopyGroup]  # duplicates, newest first, at most MAX_FINDINGS
    retry_groups: list[CopyGroup]  # only retry / dead-letter copies beside one plain one
    counts: list[DuplicateCount]
    retry_copies: int  # event ids copied by retries or dead-lettering (not duplicates)
    rows_read: int
    capped: bool  # the window held more than max_rows records with an event id


@dataclass
class KeyPartition:
    partition: int
    first_offset: int
    first_timestamp_ms: int
    records: int


@dataclass
class SplitKey:
    cluster: str
    topic: str
    key: bytes
    decoded_key: str | None
    partitions: list[KeyPartition]


@dataclass
class SplitKeys:
    keys: list[SplitKey]
    total: int  # keys on several partitions (the list holds at most MAX_FINDINGS)
    rows_read: int
    capped: bool
    per_topic: list[tuple[str, str, int]] = field(default_factory=list)  # cluster, topic, keys


@dataclass
class TopicBreaks:
    cluster: str
    topic: str
    rule: SequenceRule
    breaks: list[SequenceBreak]
    rows_read: int
    capped: bool
    without_sequence: int  # keyed records where the field was missing or unusable


@dataclass
class Ordering:
    split: SplitKeys
    sequences: list[TopicBreaks] = field(default_factory=list)

    @property
    def breaks(self) -> int:
        return self.split.total + sum(len(t.breaks) for t in self.sequences)


def _in_scope(scope: Scope, *conditions: Any) -> list[Any]:
    c = events_table.c
    where = [c.timestamp_ms >= scope.since_ms, *conditions]
    if scope.cluster is not None:
        where.append(c.cluster == scope.cluster)
    if scope.topic is not None:
        where.append(c.topic == scope.topic)
    return where


# --- duplicates -------------------------------------------------------------------------------


def duplicates(connection: Connection, scope: Scope, limit: int = MAX_FINDINGS) -> Duplicates:
    c = events_table.c
    recent = (
        select(c.cluster, c.topic, c.event_id_hash, c.timestamp_ms, c.source, c.is_dlq,
               c.dlq_attempts)
        .where(*_in_scope(scope, c.event_id_hash.is_not(None)))
        .order_by(c.timestamp_ms.desc())
        .limit(scope.max_rows)
        .subquery()
    )  # fmt: skip
    rows_read = connection.execute(select(func.count()).select_from(recent)).scalar_one()
    special = func.sum(
        case((or_(recent.c.is_dlq.is_(True), recent.c.dlq_attempts.is_not(None)), 1), else_=0)
    )
    grouped = connection.execute(
        select(recent.c.cluster, recent.c.topic, recent.c.event_id_hash,
               func.count().label("n"), special.label("special"),
               func.min(recent.c.source).label("producer"),
               func.max(recent.c.timestamp_ms).label("last"))
        .group_by(recent.c.cluster, recent.c.topic, recent.c.event_id_hash)
        .having(func.count() > 1)
    ).all()  # fmt: skip
    counts: dict[tuple[str, str, str | None], DuplicateCount] = {}
    plain_hashes, retry_hashes = [], []
    retry_copies = 0
    for row in grouped:
        plain = 0 if is_retry_topic(row.topic) else row.n - int(row.special or 0)
        if plain >= 2:
            slot = (row.cluster, row.topic, row.producer)
            count = counts.setdefault(slot, DuplicateCount(*slot, 0, 0))
            count.events += 1
            count.extra_copies += plain - 1
            plain_hashes.append((row.last, row))
        else:
            retry_copies += 1
            retry_hashes.append((row.last, row))
    plain_hashes.sort(key=lambda item: item[0], reverse=True)
    retry_hashes.sort(key=lambda item: item[0], reverse=True)
    groups = _copy_groups(connection, scope, [r for _, r in plain_hashes[:limit]])
    retry_groups = _copy_groups(connection, scope, [r for _, r in retry_hashes[:limit]])
    return Duplicates(
        groups=[g for g in groups if len(g.plain) >= 2][:limit],
        retry_groups=[g for g in retry_groups if len(g.copies) >= 2][:limit],
        counts=sorted(counts.values(), key=lambda d: (-d.extra_copies, d.topic)),
        retry_copies=retry_copies,
        rows_read=rows_read,
        capped=rows_read >= scope.max_rows,
    )


def _copy_groups(connection: Connection, scope: Scope, found: Sequence[Any]) -> list[CopyGroup]:
    """The copies of each (cluster, topic, event id hash) found, through the hash index."""
    if not found:
        return []
    c = events_table.c
    wanted = {(row.cluster, row.topic, row.event_id_hash) for row in found}
    rows = connection.execute(
        select(c.cluster, c.topic, c.partition, c.offset, c.timestamp_ms, c.event_id,
               c.event_id_hash, c.source, c.is_dlq, c.dlq_attempts)
        .where(hashed_in(c.event_id_hash, sorted({h for _, _, h in wanted})),
               narrowing_only(c.timestamp_ms >= scope.since_ms),
               c.topic.in_(sorted({t for _, t, _ in wanted})))
        .order_by(c.timestamp_ms, c.partition, c.offset)
        .limit(COPY_ROWS)
    ).all()  # fmt: skip
    groups: dict[tuple[str, str, str], CopyGroup] = {}
    for row in rows:
        if (row.cluster, row.topic, row.event_id_hash) not in wanted or row.event_id is None:
            continue
        slot = (row.cluster, row.topic, row.event_id)
        group = groups.setdefault(slot, CopyGroup(*slot, []))
        if len(group.copies) < MAX_COPIES:
            kind = copy_kind(row.topic, bool(row.is_dlq), row.dlq_attempts)
            group.copies.append(Copy(row.partition, row.offset, row.timestamp_ms, row.source, kind))
    return sorted(groups.values(), key=lambda g: -max(copy.timestamp_ms for copy in g.copies))


# --- ordering ---------------------------------------------------------------------------------


def split_keys(connection: Connection, scope: Scope, limit: int = MAX_FINDINGS) -> SplitKeys:
    """Keys written to more than one partition of a topic within the window."""
    c = events_table.c
    recent = (
        select(c.cluster, c.topic, c.partition, c.key_hash, c.timestamp_ms)
        .where(*_in_scope(scope, c.key_hash.is_not(None), c.is_dlq == false()))
        .order_by(c.timestamp_ms.desc())
        .limit(scope.max_rows)
        .subquery()
    )
    rows_read = connection.execute(select(func.count()).select_from(recent)).scalar_one()
    spread = func.count(func.distinct(recent.c.partition))
    grouped = [
        row
        for row in connection.execute(
            select(recent.c.cluster, recent.c.topic, recent.c.key_hash,
                   func.max(recent.c.timestamp_ms).label("last"))
            .group_by(recent.c.cluster, recent.c.topic, recent.c.key_hash)
            .having(spread > 1)
        ).all()
        if not is_retry_topic(row.topic)
    ]  # fmt: skip
    grouped.sort(key=lambda row: row.last, reverse=True)
    shown = grouped[:limit]
    keys: list[SplitKey] = []
    if shown:
        wanted = {(row.cluster, row.topic, row.key_hash) for row in shown}
        rows = connection.execute(
            select(c.cluster, c.topic, c.partition, c.offset, c.timestamp_ms, c.key,
                   c.decoded_key, c.key_hash)
            .where(hashed_in(c.key_hash, sorted({h for _, _, h in wanted})),
                   narrowing_only(c.timestamp_ms >= scope.since_ms),
                   c.topic.in_(sorted({t for _, t, _ in wanted})))
            .order_by(c.partition, c.offset)
            .limit(COPY_ROWS)
        ).all()  # fmt: skip
        by_key: dict[tuple[str, str, bytes], SplitKey] = {}
        for row in rows:
            if (row.cluster, row.topic, row.key_hash) not in wanted or row.key is None:
                continue
            slot = (row.cluster, row.topic, bytes(row.key))
            entry = by_key.setdefault(slot, SplitKey(*slot, row.decoded_key, []))
            part = next((p for p in entry.partitions if p.partition == row.partition), None)
            if part is None:
                entry.partitions.append(
                    KeyPartition(row.partition, row.offset, row.timestamp_ms, 1)
                )
            else:
                part.records += 1
        keys = [k for k in by_key.values() if len(k.partitions) > 1]
        for k in keys:
            k.partitions.sort(key=lambda p: p.first_timestamp_ms)
        keys.sort(key=lambda k: -max(p.first_timestamp_ms for p in k.partitions))
    per_topic: dict[tuple[str, str], int] = defaultdict(int)
    for found in grouped:
        per_topic[(found.cluster, found.topic)] += 1
    return SplitKeys(keys, len(grouped), rows_read, rows_read >= scope.max_rows,
                     [(cl, t, n) for (cl, t), n in sorted(per_topic.items())])  # fmt: skip


def sequence_topics(
    connection: Connection, rules: Sequence[SequenceRule], cluster: str | None, topic: str | None
) -> list[tuple[str, str, SequenceRule]]:
    """The indexed topics a sequence rule covers (from `positions`: one row per partition)."""
    if not rules:
        return []
    c = positions_table.c
    query = select(c.cluster, c.topic).distinct().order_by(c.cluster, c.topic)
    if cluster is not None:
        query = query.where(c.cluster == cluster)
    if topic is not None:
        query = query.where(c.topic == topic)
    found = []
    for row in connection.execute(query):
        rule = next((r for r in rules if r.matches(row.topic)), None)
        if rule is not None:
            found.append((row.cluster, row.topic, rule))
    return found[:MAX_SEQUENCE_TOPICS]


def topic_breaks(
    connection: Connection, scope: Scope, cluster: str, topic: str, rule: SequenceRule
) -> TopicBreaks:
    """Where the configured sequence of a key goes backwards (or skips) in offset order."""
    c = events_table.c
    rows = connection.execute(
        select(c.partition, c.offset, c.timestamp_ms, c.key, c.value, c.decoded_value, c.headers)
        .where(c.cluster == cluster, c.topic == topic, c.timestamp_ms >= scope.since_ms,
               c.key.is_not(None))
        .order_by(c.timestamp_ms.desc())
        .limit(scope.max_rows)
    ).all()  # fmt: skip
    records, without = [], 0
    for row in rows:
        value = read_sequence(rule.field, row.value, row.decoded_value, row.headers)
        if value is None:
            without += 1
            continue
        records.append(SequencedRecord(row.partition, row.offset, bytes(row.key), value,
                                       row.timestamp_ms))  # fmt: skip
    found = sequence_breaks(records, rule.gaps)
    found.sort(key=lambda b: b.timestamp_ms, reverse=True)
    return TopicBreaks(cluster, topic, rule, found, len(rows), len(rows) >= scope.max_rows, without)


def ordering(connection: Connection, scope: Scope, rules: Sequence[SequenceRule]) -> Ordering:
    result = Ordering(split_keys(connection, scope))
    for cluster, topic, rule in sequence_topics(connection, rules, scope.cluster, scope.topic):
        result.sequences.append(topic_breaks(connection, scope, cluster, topic, rule))
    return result


# --- what the view calls --------------------------------------------------------------------


# --- duplicate processing ---------------------------------------------------------------


@dataclass(frozen=True)
class ProcessingSpan:
    trace_id: str
    span_id: str
    service: str | None
    start_ns: int
    failed: bool


@dataclass
class Reprocessed:
    """One record that one consumer group processed more than once (consumer spans of the
    same operation naming the same coordinates: a consumer that is not idempotent, or a
    rebalance that replayed what was processed but not committed)."""

    group: str
    topic: str
    partition: int
    offset: int
    operation: str
    spans: list[ProcessingSpan] = field(default_factory=list)


@dataclass
class Reprocessing:
    records: list[Reprocessed]
    total: int  # records processed more than once, listed or not
    rows_read: int
    capped: bool


def reprocessing(connection: Connection, scope: Scope, limit: int = MAX_FINDINGS) -> Reprocessing:
    """Records processed more than once by one group, from the newest consumer spans of the
    window (`scope.max_rows` at most). Spans carry no cluster: a cluster filter is not
    applied; a topic filter is."""
    s = spans_table.c
    where = [s.start_ns >= scope.since_ms * 1_000_000, s.offset.is_not(None),
             s.consumer_group.is_not(None), s.topic.is_not(None),
             s.messaging_operation.in_(sorted(CONSUME_OPERATIONS))]  # fmt: skip
    if scope.topic is not None:
        where.append(s.topic == scope.topic)
    recent = (
        select(s.consumer_group, s.topic, s.partition, s.offset, s.messaging_operation,
               s.start_ns)
        .where(*where).order_by(s.start_ns.desc()).limit(scope.max_rows).subquery()
    )  # fmt: skip
    r = recent.c
    rows_read = connection.execute(select(func.count()).select_from(recent)).scalar_one()
    keys = (r.consumer_group, r.topic, r.partition, r.offset, r.messaging_operation)
    grouped = connection.execute(
        select(*keys, func.max(r.start_ns).label("last")).group_by(*keys)
        .having(func.count() > 1).order_by(func.max(r.start_ns).desc())
    ).all()  # fmt: skip
    records: list[Reprocessed] = []
    for row in grouped[:limit]:
        found = Reprocessed(row.consumer_group, row.topic, row.partition, row.offset,
                            row.messaging_operation)  # fmt: skip
        spans = connection.execute(
            select(s.trace_id, s.span_id, s.service_name, s.start_ns, s.status_code)
            .where(s.topic == row.topic, s.partition == row.partition, s.offset == row.offset,
                   s.consumer_group == row.consumer_group,
                   s.messaging_operation == row.messaging_operation)
            .order_by(s.start_ns).limit(MAX_COPIES)
        ).all()  # fmt: skip
        found.spans = [ProcessingSpan(x.trace_id, x.span_id, x.service_name, x.start_ns,
                                      x.status_code == STATUS_ERROR) for x in spans]  # fmt: skip
        records.append(found)
    return Reprocessing(records, len(grouped), rows_read, rows_read >= scope.max_rows)


@dataclass
class EventHealth:
    duplicates: Duplicates
    ordering: Ordering
    reprocessing: Reprocessing


def event_health(engine: Engine, scope: Scope, rules: Sequence[SequenceRule]) -> EventHealth:
    with engine.connect() as connection:
        return EventHealth(duplicates(connection, scope), ordering(connection, scope, rules),
                           reprocessing(connection, scope))  # fmt: skip


def clusters_and_topics(engine: Engine) -> dict[str, list[str]]:
    """Indexed topics per cluster, for the filters."""
    c = positions_table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(c.cluster, c.topic).distinct().order_by(c.cluster, c.topic).limit(5000)
        ).all()
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        found[row.cluster].append(row.topic)
    return dict(found)
