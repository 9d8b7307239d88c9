"""Topology: services -> topics -> consumer groups -> services, learned over a time window.

Page /topology?window=<minutes>, JSON twin /api/topology. Learned from producer and
consumer spans (service.name, messaging.destination.name, consumer group, status) and,
for producers that send no spans, from the records' source header (`ce_source`,
`source`, ...). Rates are per second over the window; the error rate is the share of
spans with error status. Shown as a table of edges (no drawn graph yet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors import traces
from collectors.index.models import events_table as events
from collectors.index.trace_models import spans_table as spans
from console.state import app_state

DEFAULT_WINDOW_MIN = 60
MAX_WINDOW_MIN = 7 * 24 * 60


@dataclass
class TopologyEdge:
    source_kind: str  # "service", "topic" or "group"
    source: str
    target_kind: str
    target: str
    count: int = 0
    errors: int = 0
    learned_from: str = "spans"


def learn_topology(engine: Engine, since_ms: int) -> list[TopologyEdge]:
    edges: dict[tuple[str, str, str, str], TopologyEdge] = {}

    def add(sk: str, s: str, tk: str, t: str, count: int, errors: int, origin: str) -> None:
        edge = edges.setdefault((sk, s, tk, t), TopologyEdge(sk, s, tk, t, learned_from=origin))
        edge.count += count
        edge.errors += errors

    c = spans.c
    is_error = func.sum(case((c.status_code == traces.STATUS_ERROR, 1), else_=0))
    span_query = (
        select(c.service_name, c.kind, c.messaging_operation, c.topic, c.consumer_group,
               func.count(), is_error)
        .where(c.start_ns >= since_ms * 1_000_000, c.topic.is_not(None))
        .group_by(c.service_name, c.kind, c.messaging_operation, c.topic, c.consumer_group)
    )  # fmt: skip
    source_query = (
        select(events.c.source, events.c.topic, func.count())
        .where(events.c.timestamp_ms >= since_ms, events.c.source.is_not(None))
        .group_by(events.c.source, events.c.topic)
    )
    with engine.connect() as connection:
        span_rows = connection.execute(span_query).all()
        source_rows = connection.execute(source_query).all()
    for service, kind, operation, topic, group, count, errors in span_rows:
        row = {"kind": kind, "messaging_operation": operation}
        service = service or "unknown service"
        if traces.is_producer(row):
            add("service", service, "topic", topic, count, errors or 0, "spans")
        elif traces.is_consumer(row):
            group_name = group or f"({service})"
            add("topic", topic, "group", group_name, count, errors or 0, "spans")
            add("group", group_name, "service", service, count, errors or 0, "spans")
    for source, topic, count in source_rows:
        if ("service", source, "topic", topic) not in edges:
            add("service", source, "topic", topic, count, 0, "record headers")
    return sorted(edges.values(), key=lambda e: (e.source_kind, e.source, e.target))


def _window(request: Request) -> int:
    raw = request.query_params.get("window") or str(DEFAULT_WINDOW_MIN)
    try:
        minutes = int(raw)
    except ValueError:
        raise HTTPException(400, f"window: not a number of minutes: {raw[:40]!r}") from None
    if not 1 <= minutes <= MAX_WINDOW_MIN:
        raise HTTPException(400, f"window: between 1 and {MAX_WINDOW_MIN} minutes")
    return minutes


def edge_json(edge: TopologyEdge, window_s: int) -> dict[str, Any]:
    return {
        "from": {"kind": edge.source_kind, "name": edge.source},
        "to": {"kind": edge.target_kind, "name": edge.target},
        "count": edge.count,
        "rate_per_s": round(edge.count / window_s, 4),
        "error_rate": round(edge.errors / edge.count, 4) if edge.count else 0.0,
        "learned_from": edge.learned_from,
    }


async def topology_page(request: Request) -> Response:
    state = app_state(request)
    minutes = _window(request)
    since_ms = int(time.time() * 1000) - minutes * 60_000
    edges = await run_in_threadpool(learn_topology, state.engine, since_ms)
    body = [edge_json(edge, minutes * 60) for edge in edges]
    if request.url.path.startswith("/api/"):
        return JSONResponse({"window_minutes": minutes, "edges": body})
    context = {"edges": body, "window": minutes}
    return state.templates.TemplateResponse(request, "topology.html", context)


routes = [Route("/topology", topology_page), Route("/api/topology", topology_page)]
