"""The consumer groups' store: what the lag sampler last saw of each group, lag trends,
chart series and status history (collectors/kafka/lag.py writes these tables).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from collectors.index.lag_models import (
    lag_groups_table,
    lag_rollups_table,
    lag_samples_table,
    lag_status_changes_table,
)
from collectors.kafka.lag_store import SEVERITY, SEVERITY_NAMES

STATUS_ORDER = {"ERR": 0, "WARN": 1, "NOTFOUND": 2, "OK": 3}
RAW_RANGE_MAX_S = 86_400  # longer ranges read the 5-minute rollups
SPARK_WINDOW_S = 30 * 60
SPARK_POINTS = 60
MAX_LISTED = 2_000
HISTORY_ROWS = 100

SUMMARY_COLUMNS = [
    lag_groups_table.c[name]
    for name in (
        "cluster", "group_id", "sampled_at_ms", "state", "status", "complete", "total_lag",
        "max_lag", "max_time_lag_s", "members", "partition_count", "topics",
    )
]  # fmt: skip


@dataclass(frozen=True)
class GroupQuery:
    text: str = ""
    status: str = ""
    cluster: str = ""
    sort: str = "status"
    topic: str = ""  # groups with committed offsets on this topic


def list_groups(engine: Engine, query: GroupQuery, now_ms: int) -> list[dict[str, Any]]:
    """The groups of the query, each with its trend over the last 30 minutes: ``trend``
    (total lag, at most SPARK_POINTS points), ``worst_status`` and ``peak_time_lag_s``."""
    g = lag_groups_table.c
    statement = select(*SUMMARY_COLUMNS)
    if query.cluster:
        statement = statement.where(g.cluster == query.cluster)
    if query.status:
        statement = statement.where(g.status == query.status)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(statement)]
    needle = query.text.lower()
    if needle:
        rows = [row for row in rows if needle in row["group_id"].lower()]
    for row in rows:
        row["topics"] = _json_list(row["topics"])
    if query.topic:
        rows = [row for row in rows if query.topic in row["topics"]]
    trends = _trends(engine, {(row["cluster"], row["group_id"]) for row in rows}, now_ms)
    for row in rows:
        trend = trends.get((row["cluster"], row["group_id"]))
        row["trend"] = [] if trend is None else trend.points
        # The window includes the latest look, whose status is always at hand.
        worst = max(SEVERITY.get(row["status"], 0), 0 if trend is None else trend.worst)
        row["worst_status"] = (
            row["status"] if worst == SEVERITY.get(row["status"], 0) else (SEVERITY_NAMES[worst])
        )
        peaks = [row["max_time_lag_s"], None if trend is None else trend.peak_time_lag_s]
        known = [peak for peak in peaks if peak is not None]
        row["peak_time_lag_s"] = max(known) if known else None
    _sort(rows, query.sort)
    return rows[:MAX_LISTED]


def _sort(rows: list[dict[str, Any]], sort: str) -> None:
    rows.sort(key=lambda r: (r["group_id"], r["cluster"]))
    if sort == "status":
        rows.sort(
            key=lambda r: (
                STATUS_ORDER.get(r["worst_status"], 9),
                STATUS_ORDER.get(r["status"], 9),
                -(r["peak_time_lag_s"] or 0.0),
                -r["total_lag"],
            )
        )
    elif sort == "lag":
        rows.sort(key=lambda r: -r["total_lag"])
    elif sort == "time_lag":
        rows.sort(key=lambda r: -(r["peak_time_lag_s"] or -1.0))
    elif sort == "members":
        rows.sort(key=lambda r: -r["members"])


def _json_list(raw: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


@dataclass
class Trend:
    points: list[int]
    worst: int  # severity, 0 OK .. 2 ERR
    peak_time_lag_s: float | None


GroupKey = tuple[str, str]  # cluster, group id


def _trends(engine: Engine, keys: set[GroupKey], now_ms: int) -> dict[GroupKey, Trend]:
    """Each group's last 30 minutes of samples, summed up."""
    if not keys:
        return {}
    s = lag_samples_table.c
    clusters = sorted({cluster for cluster, _ in keys})
    found: dict[GroupKey, Trend] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(s.cluster, s.group_id, s.total_lag, s.severity, s.max_time_lag_s)
            .where(s.cluster.in_(clusters) & (s.sampled_at_ms >= now_ms - SPARK_WINDOW_S * 1000))
            .order_by(s.sampled_at_ms)
        )
        for cluster, group_id, total_lag, severity, time_lag in rows:
            key = (cluster, group_id)
            if key not in keys:
                continue
            trend = found.get(key)
            if trend is None:
                trend = found[key] = Trend([], 0, None)
            trend.points.append(int(total_lag))
            trend.worst = max(trend.worst, min(max(int(severity), 0), 2))
            if time_lag is not None:
                trend.peak_time_lag_s = max(float(time_lag), trend.peak_time_lag_s or 0.0)
    for trend in found.values():
        trend.points = _thin(trend.points, SPARK_POINTS)
    return found


def _thin(values: list[int], points: int) -> list[int]:
    if len(values) <= points:
        return values
    step = len(values) / points
    return [max(values[int(i * step) : int((i + 1) * step)] or [0]) for i in range(points)]


def find_groups(engine: Engine, group_id: str, cluster: str) -> list[dict[str, Any]]:
    """The group of that id in that cluster (any cluster when empty), detail parsed."""
    g = lag_groups_table.c
    statement = select(lag_groups_table).where(g.group_id == group_id)
    if cluster:
        statement = statement.where(g.cluster == cluster)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(statement.order_by(g.cluster))]
    for row in rows:
        try:
            detail = json.loads(row["detail"])
        except ValueError:
            detail = {}
        row["detail"] = detail if isinstance(detail, dict) else {}
        row["topics"] = _json_list(row["topics"])
    return rows


def lag_series(
    engine: Engine, cluster: str, group_id: str, range_s: int, now_ms: int
) -> dict[str, Any]:
    """Total lag and max time lag over time: raw samples up to a day, rollups beyond."""
    since = now_ms - range_s * 1000
    with engine.connect() as connection:
        if range_s <= RAW_RANGE_MAX_S:
            s = lag_samples_table.c
            rows = connection.execute(
                select(s.sampled_at_ms, s.total_lag, s.max_time_lag_s, s.severity)
                .where(
                    (s.cluster == cluster) & (s.group_id == group_id) & (s.sampled_at_ms >= since)
                )
                .order_by(s.sampled_at_ms)
            ).all()
            source = "samples"
        else:
            r = lag_rollups_table.c
            rows = connection.execute(
                select(r.bucket_ms, r.total_lag_max, r.max_time_lag_s, r.severity_max)
                .where((r.cluster == cluster) & (r.group_id == group_id) & (r.bucket_ms >= since))
                .order_by(r.bucket_ms)
            ).all()
            source = "rollups (5-minute maxima)"
    return {
        "source": source,
        "time_ms": [int(row[0]) for row in rows],
        "total_lag": [int(row[1]) for row in rows],
        "max_time_lag_s": [None if row[2] is None else round(float(row[2]), 3) for row in rows],
        "status": [SEVERITY_NAMES[min(max(int(row[3]), 0), 2)] for row in rows],
    }


def status_history(engine: Engine, cluster: str, group_id: str) -> list[dict[str, Any]]:
    c = lag_status_changes_table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(c.changed_at_ms, c.status, c.previous, c.reason)
            .where((c.cluster == cluster) & (c.group_id == group_id))
            .order_by(c.changed_at_ms.desc())
            .limit(HISTORY_ROWS)
        )
        return [dict(row._mapping) for row in rows]


def metric_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every group's latest look with its partitions (the detail JSON), for /metrics."""
    g = lag_groups_table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(g.cluster, g.group_id, g.status, g.total_lag, g.max_lag, g.max_time_lag_s,
                   g.detail).order_by(g.cluster, g.group_id)
        )  # fmt: skip
        return [dict(row._mapping) for row in rows]


def groups_for_topic(engine: Engine, cluster: str, topic: str) -> list[dict[str, Any]]:
    """The groups with committed offsets on a topic, for the topic page."""
    query = GroupQuery(cluster=cluster, sort="group", topic=topic)
    return list_groups(engine, query, int(time.time() * 1000))
