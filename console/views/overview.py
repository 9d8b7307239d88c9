"""The on-call overview (`/`) and the search box (`/search`).

`/` answers "is anything wrong right now?" in one look: firing alerts, dead letters of the
last hour per topic, the groups furthest behind in time, the sagas that failed or are
stuck, and the background services. Each row links to its page. `/search?q=` takes any id
someone pastes (topic/partition@offset, a trace, correlation, event, saga or group id, a
topic) and goes to the page it names."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from typing_extensions import TypedDict

from collectors.services import ServiceStatus
from console.auth.roles import VIEWER
from console.stores import overview as store
from console.stores.events import format_time
from console.stores.groups import GroupQuery, list_groups
from console.stores.sagas import SagaFilter, list_sagas
from console.views.alerts import AlertJson, read_alerts
from console.views.groups import GroupSummaryJson, summary_json
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import q, text

SHOWN = 5  # rows per section
ATTENTION = ("failed", "stuck", "compensation_incomplete")  # saga statuses to look at


class DlqArrivalJson(TypedDict):
    cluster: str
    topic: str
    count: int
    newest: str
    link: str


class SagaBriefJson(TypedDict):
    cluster: str
    saga_id: str
    saga_type: str | None
    status: str
    last_event: str
    link: str


class OverviewJson(TypedDict):
    firing_alerts: list[AlertJson]
    dlq_last_hour: list[DlqArrivalJson]
    lagging_groups: list[GroupSummaryJson]
    sagas_needing_attention: list[SagaBriefJson]
    services: dict[str, ServiceStatus]


class SearchJson(TypedDict):
    query: str
    kind: str | None  # event, trace, correlation, saga, group, topic; None: nothing found
    link: str | None


def _overview(call: Call) -> OverviewJson:
    now_ms = int(time.time() * 1000)
    arrivals = [
        DlqArrivalJson(
            cluster=r["cluster"], topic=r["topic"], count=r["count"],
            newest=format_time(r["newest_ms"]), link=urls.dlq_topic(r["cluster"], r["topic"]),
        )
        for r in store.dlq_arrivals(call.engine, now_ms - 3_600_000)
    ]  # fmt: skip
    behind = [
        summary_json(row) for row in list_groups(call.engine, GroupQuery(sort="time_lag"), now_ms)
        if row["status"] != "OK" or (row["max_time_lag_s"] or 0) > 0
    ]  # fmt: skip
    sagas = list_sagas(call.engine, SagaFilter(statuses=ATTENTION, limit=SHOWN),
                       call.state.areas.sagas, now_ms).rows  # fmt: skip
    attention = [
        SagaBriefJson(
            cluster=s["cluster"], saga_id=s["saga_id"], saga_type=s["saga_type"],
            status=s["status"], last_event=format_time(s["last_ms"]),
            link=urls.saga(s["cluster"], s["saga_id"]),
        )
        for s in sagas
    ]  # fmt: skip
    return OverviewJson(
        firing_alerts=read_alerts(call, now_ms)["firing"][:SHOWN],
        dlq_last_hour=arrivals,
        lagging_groups=behind[:SHOWN],
        sagas_needing_attention=attention,
        services=call.state.services.status(),
    )


async def overview_page(call: Call) -> Reply:
    data = await run_in_threadpool(_overview, call)
    return Reply(data, page={"firing_total": len(data["firing_alerts"])})


async def search(call: Call) -> Response | Reply:
    query = call.query.get("q", "")
    if len(query) > 1000:
        raise HTTPException(400, "q: at most 1000 characters")
    found = await run_in_threadpool(store.resolve, call.engine, query) if query.strip() else None
    data = SearchJson(query=query, kind=found.kind if found else None,
                      link=found.link if found else None)  # fmt: skip
    if found is not None and not call.api:
        return RedirectResponse(found.link, status_code=302)
    page: dict[str, Any] = {"text_search": urls.events(text=query) if query.strip() else None}
    return Reply(data, page=page, status=200 if found or call.api else 404)


ENDPOINTS = [
    Endpoint(
        overview_page,
        VIEWER,
        path="/",
        api="/api/overview",
        template="overview.html",
        summary="What needs attention now: firing alerts, dead letters of the last hour, the "
        "groups furthest behind, failed or stuck sagas, and the background services.",
        response=OverviewJson,
    ),
    Endpoint(
        search,
        VIEWER,
        path="/search",
        api="/api/search",
        template="search.html",
        summary="The page an id names: topic/partition@offset, a trace, correlation, event, "
        "saga or group id, or a topic.",
        params=(q("q", text(1000), "what to look for"),),
        response=SearchJson,
        errors=(400, 404),
    ),
]
