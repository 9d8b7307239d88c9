"""The lag sampler: look at every consumer group of a cluster at a fixed interval.

Each look reads, for every consumer group: its state and members (with the partitions
assigned to each member), its committed offsets, and the begin/end offsets of those
partitions. The look is then judged with Burrow's rules (collectors/kafka/lag_rules.py)
and written to the index (collectors/index/lag_models.py):

- offset lag per partition = end offset - committed offset;
- time lag per partition: **exact** ("index") when eventscope has indexed the partition
  past the committed offset: now minus the timestamp of the record at the committed offset
  (or of the first indexed record after it, when that offset holds no record, e.g. a
  transaction marker or a compacted record); else **interpolated** ("interpolated") from
  the (end offset, time) points of earlier looks, as kafka-lag-exporter does; a partition
  with no lag has a time lag of 0 ("caught-up");
- partition status (OK, WARN, STOP, STALL, REWIND) over a window of the last
  ``lag.window`` looks, group status the worst of them (STOP/STALL/REWIND as ERR).

Windows live in memory (one deque per group partition): a restarted sampler judges
trends again once its windows are full. A partition assigned to a live member of the
group is taken as still committing, which is how a STALL (committing, not moving) is told
apart from a STOP (nobody commits any more): Kafka's offset API has no commit time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import defaultdict, deque
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
from sqlalchemy import Connection, Engine, delete, func, insert, select

from collectors.config import ClusterConfig, LagConfig
from collectors.index.lag_models import (
    lag_groups_table,
    lag_rollups_table,
    lag_samples_table,
    lag_status_changes_table,
)
from collectors.index.models import events_table, positions_table
from collectors.kafka.admin import begin_and_end_offsets, client_options
from collectors.kafka.lag_rules import (
    CommitSample,
    EndOffsetPoint,
    EndOffsetTable,
    EvaluationSettings,
    GroupEvaluation,
    PartitionEvaluation,
    evaluate_group,
    evaluate_partition,
    interpolated_time_lag,
    offset_lag,
    was_caught_up_recently,
)
from collectors.services import PeriodicService

log = logging.getLogger("eventscope.lag")

SEVERITY = {"OK": 0, "NOTFOUND": 0, "WARN": 1, "ERR": 2}
SEVERITY_NAMES = ("OK", "WARN", "ERR")
ROLLUP_BUCKET_MS = 5 * 60_000
DESCRIBE_BATCH = 100  # groups per DescribeGroups request
CONCURRENCY = 32  # offset fetches in flight
MAX_ASSIGNED_PARTITIONS = 100_000  # per member: a bigger assignment is not believed
END_OFFSET_POINTS = 60  # per partition, for interpolation
EXACT_CACHE_MAX = 200_000
RETENTION_EVERY_S = 60.0
RETENTION_CHUNK = 5_000
MAX_BACKOFF_S = 60.0

Key = tuple[str, int]  # (topic, partition)

METHOD_INDEX = "index"
METHOD_INTERPOLATED = "interpolated"
METHOD_CAUGHT_UP = "caught-up"


# ---------------------------------------------------------------------------------------------
# One look at a cluster


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
    described = await admin.describe_topics(topics)
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


# ---------------------------------------------------------------------------------------------
# Judging a look


@dataclass(slots=True)
class PartitionRow:
    topic: str
    partition: int
    committed: int
    end: int | None
    begin: int | None
    lag: int | None
    time_lag_s: float | None
    time_lag_method: str | None
    owner: Member | None
    evaluation: PartitionEvaluation

    def as_json(self) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed_offset": self.committed,
            "end_offset": self.end,
            "begin_offset": self.begin,
            "lag": self.lag,
            "time_lag_s": None if self.time_lag_s is None else round(self.time_lag_s, 3),
            "time_lag_method": self.time_lag_method,
            "owner": None if self.owner is None else self.owner.as_json(),
            "status": ev.status.value,
            "reason": ev.reason,
            "complete": round(ev.complete, 3),
            "start": _sample_json(ev.start),
            "end": _sample_json(ev.end),
        }


def _sample_json(sample: CommitSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {"offset": sample.offset, "lag": sample.lag, "timestamp": int(sample.time * 1000)}


@dataclass(slots=True)
class GroupResult:
    look: GroupLook
    evaluation: GroupEvaluation
    partitions: list[PartitionRow]

    @property
    def max_time_lag(self) -> PartitionRow | None:
        timed = [p for p in self.partitions if p.time_lag_s is not None]
        return max(timed, key=lambda p: p.time_lag_s or 0.0) if timed else None


ExactTimes = dict[tuple[str, int, int], int]  # (topic, partition, committed) -> record ms


class LagJudge:
    """The in-memory state of one cluster's evaluation: windows and end-offset tables."""

    def __init__(self, settings: EvaluationSettings) -> None:
        self.settings = settings
        self.windows: dict[tuple[str, str, int], deque[CommitSample]] = {}
        self.end_tables: dict[Key, EndOffsetTable] = {}
        self.recent_ends: dict[Key, deque[int]] = {}

    def observe_end_offsets(self, now: float, end_offsets: dict[Key, int]) -> None:
        for key, end in end_offsets.items():
            table = self.end_tables.get(key)
            if table is None:
                table = self.end_tables[key] = EndOffsetTable(END_OFFSET_POINTS)
            table.add(EndOffsetPoint(now, end))
            recent = self.recent_ends.get(key)
            if recent is None:
                recent = self.recent_ends[key] = deque(maxlen=self.settings.window)
            recent.append(end)

    def judge(self, look: ClusterLook, exact: ExactTimes) -> list[GroupResult]:
        now = look.time
        self.observe_end_offsets(now, look.end_offsets)
        results: list[GroupResult] = []
        live_windows: set[tuple[str, str, int]] = set()
        alive_states = ("Stable", "CompletingRebalance", "PreparingRebalance")
        for group in look.groups:
            evaluations: dict[Key, PartitionEvaluation] = {}
            rows: list[PartitionRow] = []
            group_alive = group.state in alive_states
            for key in sorted(group.committed):
                end = look.end_offsets.get(key)
                if end is None:
                    continue  # the topic or partition is gone
                committed = group.committed[key]
                lag = offset_lag(end, committed)
                if lag is None:
                    continue
                window_key = (group.group_id, key[0], key[1])
                live_windows.add(window_key)
                window = self.windows.get(window_key)
                if window is None:
                    window = self.windows[window_key] = deque(maxlen=self.settings.window)
                window.append(CommitSample(now, committed, lag))
                owner = group.owners.get(key)
                evaluation = evaluate_partition(
                    window,
                    now,
                    self.settings,
                    was_caught_up_recently(
                        self.recent_ends.get(key, ()), committed, self.settings.allowed_lag
                    ),
                    current_lag=lag,
                    consumer_alive=group_alive and owner is not None,
                )
                evaluations[key] = evaluation
                time_lag, method = self._time_lag(key, committed, end, lag, now, exact)
                rows.append(
                    PartitionRow(
                        key[0], key[1], committed, end, look.begin_offsets.get(key), lag,
                        time_lag, method, owner, evaluation,
                    )
                )  # fmt: skip
            results.append(GroupResult(group, evaluate_group(evaluations), rows))
        for gone in self.windows.keys() - live_windows:
            del self.windows[gone]
        for key in self.end_tables.keys() - look.end_offsets.keys():
            del self.end_tables[key]
            self.recent_ends.pop(key, None)
        return results

    def _time_lag(
        self, key: Key, committed: int, end: int, lag: int, now: float, exact: ExactTimes
    ) -> tuple[float | None, str | None]:
        if lag <= 0:
            return 0.0, METHOD_CAUGHT_UP
        written_ms = exact.get((key[0], key[1], committed))
        if written_ms is not None:
            return max(0.0, now - written_ms / 1000), METHOD_INDEX
        table = self.end_tables.get(key)
        estimate = None if table is None else interpolated_time_lag(table, committed, end, now)
        if estimate is None or not math.isfinite(estimate):
            return None, None
        return estimate, METHOD_INTERPOLATED


# ---------------------------------------------------------------------------------------------
# Exact record times from the index


class ExactTimeReader:
    """Timestamps of the records at committed offsets, read from the index and cached."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._cache: dict[tuple[str, int, int], int] = {}

    def read(self, connection: Connection, look: ClusterLook) -> ExactTimes:
        wanted: set[tuple[str, int, int]] = set()
        for group in look.groups:
            for key, committed in group.committed.items():
                end = look.end_offsets.get(key)
                if end is not None and end > committed:
                    wanted.add((key[0], key[1], committed))
        if not wanted:
            return {}
        positions = {
            (row.topic, row.partition): row.next_offset
            for row in connection.execute(
                select(
                    positions_table.c.topic,
                    positions_table.c.partition,
                    positions_table.c.next_offset,
                ).where(positions_table.c.cluster == self.cluster)
            )
        }
        found: ExactTimes = {}
        for coordinates in wanted:
            cached = self._cache.get(coordinates)
            if cached is not None:
                found[coordinates] = cached
                continue
            topic, partition, committed = coordinates
            if positions.get((topic, partition), -1) <= committed:
                continue  # not indexed that far (or not at all)
            begin = look.begin_offsets.get((topic, partition), 0)
            timestamp = self._lookup(connection, topic, partition, committed, begin)
            if timestamp is not None:
                if len(self._cache) >= EXACT_CACHE_MAX:
                    self._cache.clear()
                self._cache[coordinates] = found[coordinates] = timestamp
        return found

    def _lookup(
        self, connection: Connection, topic: str, partition: int, committed: int, begin: int
    ) -> int | None:
        e = events_table.c
        here = (e.cluster == self.cluster) & (e.topic == topic) & (e.partition == partition)
        row = connection.execute(
            select(e.offset, e.timestamp_ms)
            .where(here & (e.offset >= committed))
            .order_by(e.offset)
            .limit(1)
        ).first()
        if row is None:
            return None
        if row.offset == committed or committed <= begin:
            return int(row.timestamp_ms)
        # A gap: trust it only when the index holds records before it (so the gap is in
        # Kafka, e.g. compaction or transaction markers, not in what was indexed).
        earlier = connection.execute(
            select(e.offset).where(here & (e.offset < committed)).limit(1)
        ).first()
        return int(row.timestamp_ms) if earlier is not None else None


# ---------------------------------------------------------------------------------------------
# Writing to the index


def group_row(cluster: str, result: GroupResult, sampled_at_ms: int) -> dict[str, Any]:
    ev = result.evaluation
    slowest = result.max_time_lag
    topics = sorted({p.topic for p in result.partitions})
    detail = {
        "protocol_type": result.look.protocol_type,
        "members": [m.as_json() for m in result.look.members],
        "max_lag": None
        if ev.max_lag is None
        else {"topic": ev.max_lag.topic, "partition": ev.max_lag.partition, "lag": ev.max_lag.lag},
        "max_time_lag": None
        if slowest is None
        else {
            "topic": slowest.topic,
            "partition": slowest.partition,
            "time_lag_s": slowest.time_lag_s,
            "method": slowest.time_lag_method,
        },
        "partitions": [p.as_json() for p in result.partitions],
    }
    return {
        "cluster": cluster,
        "group_id": result.look.group_id,
        "sampled_at_ms": sampled_at_ms,
        "state": result.look.state,
        "status": ev.status.value,
        "complete": ev.complete,
        "total_lag": ev.total_lag,
        "max_lag": 0 if ev.max_lag is None else ev.max_lag.lag,
        "max_time_lag_s": None if slowest is None else slowest.time_lag_s,
        "members": len(result.look.members),
        "partition_count": ev.partition_count,
        "topics": json.dumps(topics),
        "detail": json.dumps(detail, separators=(",", ":")),
    }


def status_reason(evaluation: GroupEvaluation) -> str:
    if not evaluation.non_ok_partitions:
        return "every partition is OK" if evaluation.partition_count else "no committed offsets"
    parts = [
        f"{r.topic}[{r.partition}] {r.evaluation.status.value}: {r.evaluation.reason}"
        for r in evaluation.non_ok_partitions[:5]
    ]
    more = len(evaluation.non_ok_partitions) - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def store_look(
    connection: Connection,
    cluster: str,
    results: Sequence[GroupResult],
    sampled_at_ms: int,
    previous_status: dict[str, str],
) -> None:
    """Replace the cluster's latest group rows, add one sample per group, record changes."""
    rows = [group_row(cluster, result, sampled_at_ms) for result in results]
    connection.execute(delete(lag_groups_table).where(lag_groups_table.c.cluster == cluster))
    if rows:
        connection.execute(insert(lag_groups_table), rows)
        connection.execute(
            insert(lag_samples_table),
            [
                {
                    "cluster": cluster,
                    "group_id": row["group_id"],
                    "sampled_at_ms": sampled_at_ms,
                    "severity": SEVERITY.get(row["status"], 0),
                    "total_lag": row["total_lag"],
                    "max_time_lag_s": row["max_time_lag_s"],
                }
                for row in rows
            ],
        )
    changes = []
    for result in results:
        status = result.evaluation.status.value
        before = previous_status.get(result.look.group_id)
        if status != before:
            changes.append(
                {
                    "cluster": cluster,
                    "group_id": result.look.group_id,
                    "changed_at_ms": sampled_at_ms,
                    "status": status,
                    "previous": before,
                    "reason": status_reason(result.evaluation)[:2000],
                }
            )
        previous_status[result.look.group_id] = status
    if changes:
        connection.execute(insert(lag_status_changes_table), changes)


def latest_statuses(engine: Engine, cluster: str) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(lag_groups_table.c.group_id, lag_groups_table.c.status).where(
                lag_groups_table.c.cluster == cluster
            )
        )
        return {row.group_id: row.status for row in rows}


def roll_up(engine: Engine, cluster: str, bucket_ms: int) -> int:
    """(Re)compute one 5-minute bucket of rollups from the raw samples; return the rows."""
    s = lag_samples_table.c
    summary = (
        select(
            s.cluster,
            s.group_id,
            func.count().label("samples"),
            func.max(s.severity).label("severity_max"),
            func.max(s.total_lag).label("total_lag_max"),
            func.avg(s.total_lag).label("total_lag_avg"),
            func.max(s.max_time_lag_s).label("max_time_lag_s"),
        )
        .where(
            (s.cluster == cluster)
            & (s.sampled_at_ms >= bucket_ms)
            & (s.sampled_at_ms < bucket_ms + ROLLUP_BUCKET_MS)
        )
        .group_by(s.cluster, s.group_id)
    )
    r = lag_rollups_table.c
    with engine.begin() as connection:
        rows = [
            {
                "cluster": row.cluster,
                "group_id": row.group_id,
                "bucket_ms": bucket_ms,
                "samples": int(row.samples),
                "severity_max": int(row.severity_max),
                "total_lag_max": int(row.total_lag_max),
                "total_lag_avg": float(row.total_lag_avg),
                "max_time_lag_s": row.max_time_lag_s,
            }
            for row in connection.execute(summary)
        ]
        connection.execute(
            delete(lag_rollups_table).where((r.cluster == cluster) & (r.bucket_ms == bucket_ms))
        )
        if rows:
            connection.execute(insert(lag_rollups_table), rows)
    return len(rows)


def delete_before(
    engine: Engine, table: Any, time_column: str, cluster: str, cutoff_ms: int
) -> int:
    """Delete rows older than the cutoff in chunks (short transactions); return the count."""
    column = table.c[time_column]
    key = table.c.id if "id" in table.c else None
    total = 0
    while True:
        with engine.begin() as connection:
            if key is not None:
                chunk = (
                    select(key)
                    .where((table.c.cluster == cluster) & (column < cutoff_ms))
                    .limit(RETENTION_CHUNK)
                )
                deleted = connection.execute(delete(table).where(key.in_(chunk))).rowcount or 0
            else:  # rollups: few rows per bucket, one bucket at a time
                oldest = connection.execute(
                    select(func.min(column)).where(table.c.cluster == cluster)
                ).scalar()
                if oldest is None or oldest >= cutoff_ms:
                    return total
                deleted = (
                    connection.execute(
                        delete(table).where((table.c.cluster == cluster) & (column == oldest))
                    ).rowcount
                    or 0
                )
        total += deleted
        if key is not None and deleted < RETENTION_CHUNK:
            return total


# ---------------------------------------------------------------------------------------------
# The service


@dataclass
class SamplerStats:
    looks: int = 0
    groups: int = 0
    partitions: int = 0
    last_look_at: float | None = None
    last_duration_s: float | None = None
    errors: int = 0


class LagSampler(PeriodicService):
    """A background service that samples one cluster's consumer groups every interval."""

    def __init__(
        self,
        cluster: ClusterConfig,
        engine: Engine,
        settings: LagConfig,
        exclude_groups: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.name = f"lag[{cluster.name}]"
        self.retry_s = settings.interval_s
        self.max_backoff_s = MAX_BACKOFF_S
        self.cluster = cluster
        self.engine = engine
        self.settings = settings
        self.exclude = frozenset(exclude_groups)
        self.judge = LagJudge(
            EvaluationSettings(window=settings.window, allowed_lag=settings.allowed_lag)
        )
        self.exact = ExactTimeReader(cluster.name)
        self.stats = SamplerStats()
        self._coordinators: dict[str, int] = {}
        self._previous_status: dict[str, str] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._last_rollup_bucket: int | None = None
        self._last_retention = 0.0

    async def stop(self) -> None:
        await super().stop()
        await self._disconnect()

    async def step(self) -> float:
        started = time.monotonic()
        await self.sample_once()
        return max(0.0, self.settings.interval_s - (time.monotonic() - started))

    async def on_error(self, exc: Exception) -> None:
        """An unreachable cluster or index: the clients are opened afresh next time."""
        self.stats.errors += 1
        await self._disconnect()

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._reader is None:
            await self._disconnect()
            options = client_options(self.cluster)
            options.pop("client_id")
            admin = AIOKafkaAdminClient(client_id="eventscope-lag", **options)
            reader = AIOKafkaConsumer(
                group_id=None, enable_auto_commit=False, **client_options(self.cluster)
            )
            try:
                await admin.start()
                await reader.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await admin.close()
                with contextlib.suppress(Exception):
                    await reader.stop()
                raise
            self._admin, self._reader = admin, reader
        return self._admin, self._reader

    async def _disconnect(self) -> None:
        admin, reader = self._admin, self._reader
        self._admin = self._reader = None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.stop()

    async def read(self) -> ClusterLook:
        """One look at the cluster (Kafka only; nothing is judged or written)."""
        admin, reader = await self._connect()
        timeout = max(30.0, self.settings.interval_s * 3)
        async with asyncio.timeout(timeout):
            groups = await read_groups(admin, self.exclude, self._coordinators)
            keys = {key for group in groups for key in group.committed}
            begin, end = await read_partition_offsets(admin, reader, keys)
        return ClusterLook(time.time(), groups, end, begin)

    async def sample_once(self) -> list[GroupResult]:
        started = time.perf_counter()
        look = await self.read()
        results = await asyncio.to_thread(self.judge_and_store, look)
        self.stats.looks += 1
        self.stats.groups = len(results)
        self.stats.partitions = sum(len(r.partitions) for r in results)
        self.stats.last_look_at = look.time
        self.stats.last_duration_s = time.perf_counter() - started
        return results

    def judge_and_store(self, look: ClusterLook) -> list[GroupResult]:
        """Judge a look and write it (runs in a worker thread)."""
        cluster = self.cluster.name
        if self._previous_status is None:
            self._previous_status = latest_statuses(self.engine, cluster)
        with self.engine.connect() as connection:
            exact = self.exact.read(connection, look)
        results = self.judge.judge(look, exact)
        sampled_at_ms = int(look.time * 1000)
        with self.engine.begin() as connection:
            store_look(connection, cluster, results, sampled_at_ms, self._previous_status)
        for gone in self._previous_status.keys() - {r.look.group_id for r in results}:
            del self._previous_status[gone]
        self._maintain(sampled_at_ms)
        return results

    def _maintain(self, now_ms: int) -> None:
        """Roll closed buckets up and apply retention (chunked), at most once a minute."""
        bucket = now_ms - now_ms % ROLLUP_BUCKET_MS
        cluster = self.cluster.name
        if self._last_rollup_bucket is None:
            self._last_rollup_bucket = bucket
            roll_up(self.engine, cluster, bucket - ROLLUP_BUCKET_MS)
        elif bucket > self._last_rollup_bucket:
            roll_up(self.engine, cluster, self._last_rollup_bucket)
            self._last_rollup_bucket = bucket
        if now_ms / 1000 - self._last_retention < RETENTION_EVERY_S:
            return
        self._last_retention = now_ms / 1000
        raw_cutoff = now_ms - int(self.settings.raw_retention_s * 1000)
        rollup_cutoff = now_ms - int(self.settings.rollup_retention_s * 1000)
        delete_before(self.engine, lag_samples_table, "sampled_at_ms", cluster, raw_cutoff)
        delete_before(self.engine, lag_rollups_table, "bucket_ms", cluster, rollup_cutoff)
        delete_before(
            self.engine, lag_status_changes_table, "changed_at_ms", cluster, rollup_cutoff
        )
