"""Clusters and topics as the broker reports them (partitions, offsets, sizes).

Pages: /clusters, /clusters/{cluster}, /clusters/{cluster}/topics/{topic}.
JSON twins: the same paths under /api.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from collectors.config import ClusterConfig
from collectors.kafka.admin import ClusterOverview, TopicInfo, cluster_overview
from console.state import app_state
from console.views.groups import group_url, groups_for_topic, summary_json

OVERVIEW_TIMEOUT_S = 15.0


def _cluster(request: Request) -> ClusterConfig:
    name = request.path_params["cluster"]
    try:
        return app_state(request).settings.cluster(name)
    except KeyError:
        raise HTTPException(404, f"no cluster named {name!r} is configured") from None


async def _ask_kafka(cluster: ClusterConfig) -> tuple[ClusterOverview | None, str | None]:
    try:
        async with asyncio.timeout(OVERVIEW_TIMEOUT_S):
            return await cluster_overview(cluster), None
    except Exception as exc:  # shown to the user: the page still renders
        return None, f"cannot reach {cluster.bootstrap}: {type(exc).__name__}: {exc}"[:500]


async def _overview(
    request: Request, cluster: ClusterConfig
) -> tuple[ClusterOverview | None, str | None]:
    """The cluster as Kafka describes it now; concurrent requests share one round trip.

    An overview of a large cluster takes seconds (every topic's metadata, offsets and
    sizes); twenty people opening the topics page at once ask Kafka once, not twenty
    times. Nothing is kept after the answer: the next request asks again.
    """
    flights = app_state(request).in_flight
    key = f"overview:{cluster.name}"
    flight = flights.get(key)
    if flight is None or flight.done():
        flight = asyncio.ensure_future(_ask_kafka(cluster))
        flights[key] = flight
    answer: tuple[ClusterOverview | None, str | None] = await asyncio.shield(flight)
    return answer


def topic_json(topic: TopicInfo) -> dict[str, Any]:
    return {
        "name": topic.name,
        "internal": topic.internal,
        "partition_count": len(topic.partitions),
        "replication_factor": topic.replication_factor,
        "under_replicated_partitions": topic.under_replicated,
        "messages": topic.messages,
        "end_offset_total": topic.end_offset_total,
        "size_bytes": topic.size_bytes,
        "partitions": [asdict(p) | {"messages": p.messages} for p in topic.partitions],
    }


def overview_json(overview: ClusterOverview) -> dict[str, Any]:
    return {
        "name": overview.name,
        "bootstrap": overview.bootstrap,
        "cluster_id": overview.cluster_id,
        "controller_id": overview.controller_id,
        "brokers": overview.brokers,
        "topics": [topic_json(t) for t in overview.topics],
    }


@dataclass
class ClusterRow:
    config: ClusterConfig
    overview: ClusterOverview | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.config.name,
            "bootstrap": self.config.bootstrap,
            "reachable": self.overview is not None,
            "error": self.error,
            "brokers": self.overview.brokers if self.overview else [],
            "topic_count": len(self.overview.topics) if self.overview else None,
        }


async def clusters_page(request: Request) -> Response:
    state = app_state(request)
    clusters = state.settings.clusters
    overviews = await asyncio.gather(*(_overview(request, c) for c in clusters))
    rows = [ClusterRow(c, o, e) for c, (o, e) in zip(clusters, overviews, strict=True)]
    if request.url.path.startswith("/api/"):
        return JSONResponse({"clusters": [row.as_json() for row in rows]})
    return state.templates.TemplateResponse(request, "clusters.html", {"rows": rows})


async def topics_page(request: Request) -> Response:
    state = app_state(request)
    cluster = _cluster(request)
    overview, error = await _overview(request, cluster)
    show_internal = request.query_params.get("internal") == "1"
    query = request.query_params.get("q", "").strip()
    topics: list[TopicInfo] = []
    if overview is not None:
        topics = [
            t
            for t in overview.topics
            if (show_internal or not t.internal) and query.lower() in t.name.lower()
        ]
    if request.url.path.startswith("/api/"):
        if overview is None:
            return JSONResponse({"error": error}, status_code=503)
        return JSONResponse(overview_json(overview) | {"topics": [topic_json(t) for t in topics]})
    context = {
        "cluster": cluster,
        "overview": overview,
        "error": error,
        "topics": topics,
        "show_internal": show_internal,
        "query": query,
    }
    template = "_topics_table.html" if request.headers.get("hx-request") else "topics.html"
    return state.templates.TemplateResponse(request, template, context)


async def topic_page(request: Request) -> Response:
    state = app_state(request)
    cluster = _cluster(request)
    name = request.path_params["topic"]
    overview, error = await _overview(request, cluster)
    if overview is None:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": error}, status_code=503)
        return state.templates.TemplateResponse(
            request, "topic.html", {"cluster": cluster, "topic": None, "error": error,
                                    "name": name}, status_code=503,
        )  # fmt: skip
    topic = next((t for t in overview.topics if t.name == name), None)
    if topic is None:
        raise HTTPException(404, f"topic {name!r} does not exist in cluster {cluster.name!r}")
    consumers = await run_in_threadpool(groups_for_topic, state.engine, cluster.name, name)
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            topic_json(topic)
            | {"cluster": cluster.name, "consumer_groups": [summary_json(g) for g in consumers]}
        )
    return state.templates.TemplateResponse(
        request, "topic.html", {"cluster": cluster, "topic": topic, "error": None, "name": name,
                                "consumer_groups": consumers, "group_url": group_url},
    )  # fmt: skip


async def home(request: Request) -> Response:
    return RedirectResponse("/clusters", status_code=302)


async def topics_of_the_cluster(request: Request) -> Response:
    """/topics: the topics page of the only cluster; with several, the list of clusters."""
    clusters = app_state(request).settings.clusters
    target = f"/clusters/{quote(clusters[0].name, safe='')}" if len(clusters) == 1 else "/clusters"
    return RedirectResponse(target, status_code=302)


routes = [
    Route("/", home),
    Route("/topics", topics_of_the_cluster),
    Route("/clusters", clusters_page),
    Route("/api/clusters", clusters_page),
    Route("/clusters/{cluster}", topics_page),
    Route("/api/clusters/{cluster}", topics_page),
    Route("/clusters/{cluster}/topics/{topic:path}", topic_page),
    Route("/api/clusters/{cluster}/topics/{topic:path}", topic_page),
]
