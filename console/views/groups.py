"""Consumer groups: lag, time lag and Burrow-style health, as the lag sampler last saw them.

Pages: /groups (all groups: filter, sort, trend sparklines), /groups/{group} (partitions,
lag over time, status history; ``?cluster=`` picks the cluster when the name is taken in
several, ``?range=`` the chart's span). JSON twins: /api/groups and /api/groups/{group},
the latter shaped like Burrow's consumer status (status, complete, totallag, maxlag,
partitions) plus the chart series and the status history.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typing_extensions import TypedDict

from collectors.index.lag_models import (
    lag_groups_table,
    lag_rollups_table,
    lag_samples_table,
    lag_status_changes_table,
)
from collectors.kafka.lag import SEVERITY_NAMES
from console.state import app_state
from console.web.schema import SelfLink

STATUSES = ("OK", "WARN", "ERR", "NOTFOUND")
STATUS_ORDER = {"ERR": 0, "WARN": 1, "NOTFOUND": 2, "OK": 3}
SORTS = ("status", "group", "lag", "time_lag", "members")
RANGES = {"1h": 3_600, "6h": 6 * 3_600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
RAW_RANGE_MAX_S = 86_400  # longer ranges read the 5-minute rollups
SPARK_WINDOW_S = 30 * 60
SPARK_POINTS = 60
MAX_LISTED = 2_000
HISTORY_ROWS = 100
MAX_PARAM = 300
METHOD_LABELS = {
    "index": "exact (index)",
    "interpolated": "estimated (interpolated)",
    "caught-up": "caught up",
}

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


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if len(value) > MAX_PARAM:
        raise HTTPException(400, f"{name} is longer than {MAX_PARAM} characters")
    return value


def parse_query(request: Request) -> GroupQuery:
    status = _param(request, "status").upper()
    if status and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    sort = _param(request, "sort") or "status"
    if sort not in SORTS:
        raise HTTPException(400, f"sort must be one of {', '.join(SORTS)}")
    return GroupQuery(_param(request, "q"), status, _param(request, "cluster"), sort)


# ---------------------------------------------------------------------------------------------
# Reading the index


def list_groups(engine: Engine, query: GroupQuery) -> list[dict[str, Any]]:
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
    _sort(rows, query.sort)
    return rows[:MAX_LISTED]


def _sort(rows: list[dict[str, Any]], sort: str) -> None:
    rows.sort(key=lambda r: (r["group_id"], r["cluster"]))
    if sort == "status":
        rows.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 9), -r["total_lag"]))
    elif sort == "lag":
        rows.sort(key=lambda r: -r["total_lag"])
    elif sort == "time_lag":
        rows.sort(key=lambda r: -(r["max_time_lag_s"] or -1.0))
    elif sort == "members":
        rows.sort(key=lambda r: -r["members"])


def _json_list(raw: str) -> list[Any]:
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


def sparklines(
    engine: Engine, keys: list[tuple[str, str]], now_ms: int
) -> dict[tuple[str, str], list[int]]:
    """Total lag of the last 30 minutes per group, at most SPARK_POINTS points each."""
    if not keys:
        return {}
    wanted = set(keys)
    s = lag_samples_table.c
    clusters = sorted({cluster for cluster, _ in keys})
    series: dict[tuple[str, str], list[int]] = defaultdict(list)
    with engine.connect() as connection:
        rows = connection.execute(
            select(s.cluster, s.group_id, s.total_lag)
            .where(s.cluster.in_(clusters) & (s.sampled_at_ms >= now_ms - SPARK_WINDOW_S * 1000))
            .order_by(s.sampled_at_ms)
        )
        for cluster, group_id, total_lag in rows:
            if (cluster, group_id) in wanted:
                series[(cluster, group_id)].append(int(total_lag))
    return {key: _thin(values, SPARK_POINTS) for key, values in series.items()}


def _thin(values: list[int], points: int) -> list[int]:
    if len(values) <= points:
        return values
    step = len(values) / points
    return [max(values[int(i * step) : int((i + 1) * step)] or [0]) for i in range(points)]


def find_group(engine: Engine, group_id: str, cluster: str) -> dict[str, Any] | None:
    g = lag_groups_table.c
    statement = select(lag_groups_table).where(g.group_id == group_id)
    if cluster:
        statement = statement.where(g.cluster == cluster)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(statement.order_by(g.cluster))]
    if len(rows) > 1:
        names = ", ".join(row["cluster"] for row in rows)
        raise HTTPException(400, f"group {group_id!r} exists in clusters {names}: add ?cluster=")
    if not rows:
        return None
    row = rows[0]
    try:
        detail = json.loads(row["detail"])
    except ValueError:
        detail = {}
    row["detail"] = detail if isinstance(detail, dict) else {}
    row["topics"] = _json_list(row["topics"])
    return row


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


def groups_for_topic(engine: Engine, cluster: str, topic: str) -> list[dict[str, Any]]:
    """The groups with committed offsets on a topic, for the topic page."""
    rows = list_groups(engine, GroupQuery(cluster=cluster, sort="group"))
    return [row for row in rows if topic in row["topics"]]


# ---------------------------------------------------------------------------------------------
# JSON shapes


class GroupSummaryJson(TypedDict):
    """A consumer group as Burrow's consumer list sees it, plus eventscope's time lag."""

    cluster: str
    group: str
    state: str
    status: str
    complete: float
    totallag: int
    maxlag: int | None
    max_time_lag_s: float | None
    members: int
    partition_count: int
    topics: list[str]
    sampled_at_ms: int
    links: SelfLink


def summary_json(row: dict[str, Any]) -> GroupSummaryJson:
    return GroupSummaryJson(
        cluster=row["cluster"],
        group=row["group_id"],
        state=row["state"],
        status=row["status"],
        complete=round(row["complete"], 3),
        totallag=row["total_lag"],
        maxlag=row["max_lag"],
        max_time_lag_s=_round(row["max_time_lag_s"]),
        members=row["members"],
        partition_count=row["partition_count"],
        topics=row["topics"],
        sampled_at_ms=row["sampled_at_ms"],
        links=SelfLink(self=group_url(row["cluster"], row["group_id"], api=True)),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def group_url(cluster: str, group_id: str, *, api: bool = False) -> str:
    prefix = "/api/groups/" if api else "/groups/"
    return f"{prefix}{quote(group_id, safe='')}?{urlencode({'cluster': cluster})}"


def detail_json(row: dict[str, Any]) -> dict[str, Any]:
    detail = row["detail"]
    partitions = [p for p in detail.get("partitions", []) if isinstance(p, dict)]
    max_lag = detail.get("max_lag")
    maxlag_partition = None
    if isinstance(max_lag, dict):
        maxlag_partition = next(
            (
                p
                for p in partitions
                if p.get("topic") == max_lag.get("topic")
                and p.get("partition") == max_lag.get("partition")
            ),
            None,
        )
    return summary_json(row) | {
        "maxlag": maxlag_partition,
        "max_time_lag": detail.get("max_time_lag"),
        "members": detail.get("members", []),
        "member_count": row["members"],
        "protocol_type": detail.get("protocol_type"),
        "partitions": partitions,
    }


# ---------------------------------------------------------------------------------------------
# Handlers


async def groups_page(request: Request) -> Response:
    state = app_state(request)
    query = parse_query(request)
    now_ms = int(time.time() * 1000)

    def load() -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[int]]]:
        rows = list_groups(state.engine, query)
        keys = [(row["cluster"], row["group_id"]) for row in rows]
        return rows, sparklines(state.engine, keys, now_ms)

    rows, sparks = await run_in_threadpool(load)
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {
                "groups": [
                    summary_json(row) | {"trend": sparks.get((row["cluster"], row["group_id"]), [])}
                    for row in rows
                ]
            }
        )
    context = {
        "rows": rows,
        "sparks": sparks,
        "query": query,
        "statuses": STATUSES,
        "sorts": SORTS,
        "clusters": [c.name for c in state.settings.clusters],
        "group_url": group_url,
        "sampler_group": state.settings.collector.group_id,
    }
    template = "_groups_table.html" if request.headers.get("hx-request") else "groups.html"
    return state.templates.TemplateResponse(request, template, context)


async def group_page(request: Request) -> Response:
    state = app_state(request)
    group_id = request.path_params["group"]
    cluster = _param(request, "cluster")
    range_name = _param(request, "range") or "1h"
    if range_name not in RANGES:
        raise HTTPException(400, f"range must be one of {', '.join(RANGES)}")
    now_ms = int(time.time() * 1000)

    def load() -> tuple[dict[str, Any] | None, dict[str, Any], list[dict[str, Any]]]:
        row = find_group(state.engine, group_id, cluster)
        if row is None:
            return None, {}, []
        series = lag_series(state.engine, row["cluster"], group_id, RANGES[range_name], now_ms)
        return row, series, status_history(state.engine, row["cluster"], group_id)

    row, series, history = await run_in_threadpool(load)
    if row is None:
        where = f" in cluster {cluster!r}" if cluster else ""
        raise HTTPException(404, f"no consumer group {group_id!r}{where} has been sampled")
    body = detail_json(row)
    if request.url.path.startswith("/api/"):
        return JSONResponse(body | {"range": range_name, "series": series, "history": history})
    context = {
        "group": body,
        "row": row,
        "range": range_name,
        "ranges": list(RANGES),
        "history": history,
        "series_url": group_url(row["cluster"], group_id, api=True) + f"&range={range_name}",
        "group_url": group_url,
        "method_labels": METHOD_LABELS,
    }
    return state.templates.TemplateResponse(request, "group.html", context)


routes = [
    Route("/groups", groups_page),
    Route("/api/groups", groups_page),
    Route("/groups/{group:path}", group_page),
    Route("/api/groups/{group:path}", group_page),
]
