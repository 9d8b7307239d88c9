"""Consumer groups: lag, time lag and Burrow-style health, as the lag sampler last saw them.

Pages: /groups (all groups: filter, sort, trend sparklines), /groups/{group} (partitions,
lag over time, status history; ``?cluster=`` picks the cluster when the name is taken in
several, ``?range=`` the chart's span). JSON twins: /api/groups and /api/groups/{group},
the latter shaped like Burrow's consumer status (status, complete, totallag, maxlag,
partitions) plus the chart series and the status history.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console import stuck_records
from console.auth.roles import VIEWER
from console.stores import audit
from console.stores import groups as store
from console.stores.groups import GroupQuery
from console.stores.masking import masker_for
from console.stuck_records import StuckJson
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, SelfLink, enum, p, q, text

STATUSES = ("OK", "WARN", "ERR", "NOTFOUND")
SORTS = ("status", "group", "lag", "time_lag", "members")
RANGES = {"1h": 3_600, "6h": 6 * 3_600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
MAX_PARAM = 300
METHOD_LABELS = {
    "index": "exact (index)",
    "interpolated": "estimated (interpolated)",
    "caught-up": "caught up",
}


def _param(call: Call, name: str) -> str:
    value = call.query.get(name, "").strip()
    if len(value) > MAX_PARAM:
        raise HTTPException(400, f"{name} is longer than {MAX_PARAM} characters")
    return value


def parse_query(call: Call) -> GroupQuery:
    status = _param(call, "status").upper()
    if status and status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    sort = _param(call, "sort") or "status"
    if sort not in SORTS:
        raise HTTPException(400, f"sort must be one of {', '.join(SORTS)}")
    return GroupQuery(_param(call, "q"), status, _param(call, "cluster"), sort)


# ---------------------------------------------------------------------------------------------
# JSON shapes


class GroupJsonBase(TypedDict):
    """What the list and the detail of a group share (Burrow's names where it has them)."""

    cluster: str
    group: str
    state: str
    status: str
    complete: float
    totallag: int
    max_time_lag_s: float | None
    partition_count: int
    topics: list[str]
    sampled_at_ms: int
    links: SelfLink


class GroupSummaryJson(GroupJsonBase):
    """A consumer group as Burrow's consumer list sees it, plus eventscope's time lag."""

    maxlag: int | None
    members: int


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
        links=SelfLink(self=urls.group(row["cluster"], row["group_id"], api=True)),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class GroupJson(GroupSummaryJson):
    """The list's row: the group now, and over the last 30 minutes."""

    trend: list[int]  # total lag
    worst_status: str
    peak_time_lag_s: float | None


def trend_json(row: dict[str, Any]) -> GroupJson:
    return GroupJson(
        **summary_json(row),
        trend=row["trend"],
        worst_status=row["worst_status"],
        peak_time_lag_s=_round(row["peak_time_lag_s"]),
    )


class GroupsJson(TypedDict):
    groups: list[GroupJson]


class LagSeriesJson(TypedDict):
    source: str
    time_ms: list[int]
    total_lag: list[int]
    max_time_lag_s: list[float | None]
    status: list[str]


class StatusChangeJson(TypedDict):
    changed_at_ms: int
    status: str
    previous: str | None
    reason: str | None


class GroupDetailJson(GroupJsonBase):
    """Burrow's consumer status (status, complete, totallag, maxlag, partitions) plus the
    time lag, the members, the chart series and the status history."""

    maxlag: dict[str, Any] | None  # the partition with the largest lag
    max_time_lag: Any
    members: list[Any]
    member_count: int
    protocol_type: str | None
    partitions: list[dict[str, Any]]
    health: dict[str, Any] | None  # the status explained: thresholds, Burrow, hold
    range: str
    series: LagSeriesJson
    history: list[StatusChangeJson]
    changes: list[dict[str, Any]]  # offset resets and deletions made from the console
    stuck: list[StuckJson]  # stopped or stalled partitions: the record they are stuck at


def detail_json(row: dict[str, Any]) -> dict[str, Any]:
    """The group's JSON without its range, series and history."""
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
        "health": detail.get("health") if isinstance(detail.get("health"), dict) else None,
    }


# ---------------------------------------------------------------------------------------------
# Handlers


async def groups_page(call: Call) -> Reply:
    query = parse_query(call)
    now_ms = int(time.time() * 1000)

    rows = await run_in_threadpool(store.list_groups, call.engine, query, now_ms)
    data = GroupsJson(groups=[trend_json(row) for row in rows])
    page = {
        "rows": rows,
        "query": query,
        "statuses": STATUSES,
        "sorts": SORTS,
        "clusters": [c.name for c in call.settings.clusters],
        "sampler_group": call.settings.collector.group_id,
    }
    return Reply(data, page=page)


async def group_page(call: Call) -> Reply:
    group_id = call.path["group"]
    cluster = _param(call, "cluster")
    range_name = _param(call, "range") or "1h"
    if range_name not in RANGES:
        raise HTTPException(400, f"range must be one of {', '.join(RANGES)}")
    now_ms = int(time.time() * 1000)

    def load() -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]], list[Any]]:
        rows = store.find_groups(call.engine, group_id, cluster)
        if len(rows) != 1:
            return rows, {}, [], []
        found = rows[0]["cluster"]
        series = store.lag_series(call.engine, found, group_id, RANGES[range_name], now_ms)
        changes = audit.changes_to(call.engine, f"{found}/{group_id}", "group")
        return rows, series, store.status_history(call.engine, found, group_id), changes

    rows, series, history, changes = await run_in_threadpool(load)
    if len(rows) > 1:
        names = ", ".join(row["cluster"] for row in rows)
        raise HTTPException(400, f"group {group_id!r} exists in clusters {names}: add ?cluster=")
    if not rows:
        where = f" in cluster {cluster!r}" if cluster else ""
        raise HTTPException(404, f"no consumer group {group_id!r}{where} has been sampled")
    row = rows[0]
    body = detail_json(row)
    mask = await masker_for(call.request)
    body["stuck"] = await run_in_threadpool(
        stuck_records.find, call.engine, row["cluster"], group_id, body["partitions"], mask
    )
    page = {
        "group": body,
        "row": row,
        "range": range_name,
        "ranges": list(RANGES),
        "history": history,
        "series_url": urls.group(row["cluster"], group_id, api=True, range=range_name),
        "method_labels": METHOD_LABELS,
        "changes": changes,
        "reset_url": urls.reset_offsets(row["cluster"], group_id),
    }
    twin = {"range": range_name, "series": series, "history": history, "changes": changes}
    return Reply(body | twin, page=page)


SHORT_TEXT = text(MAX_PARAM)

ENDPOINTS = [
    Endpoint(
        groups_page, VIEWER, path="/groups", api="/api/groups", template="groups.html",
        partial="_groups_table.html",
        summary="Consumer groups as the lag sampler last saw them, with a lag trend.",
        params=(
            q("q", SHORT_TEXT, "group ids containing this text"),
            q("status", enum("OK", "WARN", "ERR", "NOTFOUND", "ok", "warn", "err")),
            q("cluster", SHORT_TEXT),
            q("sort", enum(*SORTS)),
        ),
        response=GroupsJson, errors=(400,),
    ),
    Endpoint(
        group_page, VIEWER, path="/groups/{group:text}", api="/api/groups/{group:text}",
        template="group.html",
        summary="One group, shaped like Burrow's consumer status, with series and history.",
        params=(
            p("group", STRING, "the consumer group id"),
            q("cluster", SHORT_TEXT, "needed when the group id exists in several clusters"),
            q("range", enum(*RANGES), "span of the series"),
        ),
        response=GroupDetailJson, errors=(400, 404),
    ),
]  # fmt: skip
