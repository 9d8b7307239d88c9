"""What the lag sampler writes and reads in the index: the exact time of the record at a
committed offset, each look (group rows, samples, status changes), the 5-minute rollups
and their retention (collectors/index/lag_models.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select

from collectors.index.lag_models import (
    lag_groups_table,
    lag_rollups_table,
    lag_samples_table,
    lag_status_changes_table,
)
from collectors.index.models import events_table, positions_table
from collectors.kafka.lag_judge import ExactTimes, GroupResult
from collectors.kafka.lag_look import ClusterLook

SEVERITY = {"OK": 0, "NOTFOUND": 0, "WARN": 1, "ERR": 2}
SEVERITY_NAMES = ("OK", "WARN", "ERR")
ROLLUP_BUCKET_MS = 5 * 60_000
EXACT_CACHE_MAX = 200_000
RETENTION_CHUNK = 5_000


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
        "health": result.health.as_json(),
    }
    return {
        "cluster": cluster,
        "group_id": result.look.group_id,
        "sampled_at_ms": sampled_at_ms,
        "state": result.look.state,
        "status": result.health.status.value,
        "complete": ev.complete,
        "total_lag": ev.total_lag,
        "max_lag": 0 if ev.max_lag is None else ev.max_lag.lag,
        "max_time_lag_s": None if slowest is None else slowest.time_lag_s,
        "members": len(result.look.members),
        "partition_count": ev.partition_count,
        "topics": json.dumps(topics),
        "detail": json.dumps(detail, separators=(",", ":")),
    }


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
        status = result.health.status.value
        before = previous_status.get(result.look.group_id)
        if status != before:
            changes.append(
                {
                    "cluster": cluster,
                    "group_id": result.look.group_id,
                    "changed_at_ms": sampled_at_ms,
                    "status": status,
                    "previous": before,
                    "reason": result.health.explanation[:2000],
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
