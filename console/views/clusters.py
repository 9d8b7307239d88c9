"""Clusters and topics as the broker reports them (partitions, offsets, sizes).

Pages: /clusters, /clusters/{cluster}, /clusters/{cluster}/topics/{topic}, with JSON
twins under /api; / and /topics lead to them.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from typing_extensions import TypedDict

from collectors.config import ClusterConfig, redact_url
from collectors.kafka.admin import ClusterOverview, TopicInfo, cluster_overview
from console.auth.roles import VIEWER
from console.state import app_state
from console.stores import schemas as schema_store
from console.stores.groups import groups_for_topic
from console.views.groups import GroupSummaryJson, summary_json
from console.views.operating import cluster_of
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, enum, p, q

OVERVIEW_TIMEOUT_S = 15.0


def _cluster(call: Call) -> ClusterConfig:
    return cluster_of(call, call.path["cluster"], 404)


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


class PartitionJson(TypedDict):
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    begin_offset: int | None
    end_offset: int | None
    size_bytes: int | None
    messages: int | None


class TopicJson(TypedDict):
    name: str
    internal: bool
    partition_count: int
    replication_factor: int
    under_replicated_partitions: int
    messages: int
    end_offset_total: int
    size_bytes: int | None
    partitions: list[PartitionJson]


class BrokerJson(TypedDict):
    node_id: int
    host: str
    port: int
    rack: str | None


class SchemaRegistryJson(TypedDict):
    url: str  # without a password
    reachable: bool
    error: str | None


class ClusterJson(TypedDict):
    name: str
    bootstrap: str
    reachable: bool
    error: str | None
    brokers: list[BrokerJson]
    topic_count: int | None
    schema_registry: SchemaRegistryJson | None


class ClustersJson(TypedDict):
    clusters: list[ClusterJson]


class TopicsJson(TypedDict):
    name: str
    bootstrap: str
    cluster_id: str | None
    controller_id: int | None
    brokers: list[BrokerJson]
    topics: list[TopicJson]


class TopicDetailJson(TopicJson):
    cluster: str
    consumer_groups: list[GroupSummaryJson]


def topic_json(topic: TopicInfo) -> TopicJson:
    return TopicJson(
        name=topic.name,
        internal=topic.internal,
        partition_count=len(topic.partitions),
        replication_factor=topic.replication_factor,
        under_replicated_partitions=topic.under_replicated,
        messages=topic.messages,
        end_offset_total=topic.end_offset_total,
        size_bytes=topic.size_bytes,
        partitions=[
            PartitionJson(**asdict(p), messages=p.messages)  # type: ignore[typeddict-item]
            for p in topic.partitions
        ],
    )


def _brokers(overview: ClusterOverview | None) -> list[BrokerJson]:
    return [BrokerJson(**b) for b in overview.brokers] if overview else []  # type: ignore[typeddict-item]


@dataclass
class ClusterRow:
    config: ClusterConfig
    overview: ClusterOverview | None
    error: str | None
    registry: SchemaRegistryJson | None = None

    def as_json(self) -> ClusterJson:
        return ClusterJson(
            name=self.config.name,
            bootstrap=self.config.bootstrap,
            reachable=self.overview is not None,
            error=self.error,
            brokers=_brokers(self.overview),
            topic_count=len(self.overview.topics) if self.overview else None,
            schema_registry=self.registry,
        )


def _registry_state(call: Call, cluster: ClusterConfig) -> SchemaRegistryJson | None:
    if cluster.schema_registry is None:
        return None
    error = schema_store.reachability(call.state, cluster)
    url = redact_url(cluster.schema_registry.url)
    return SchemaRegistryJson(url=url, reachable=error is None, error=error)


async def clusters_page(call: Call) -> Reply:
    clusters = call.settings.clusters
    overviews = await asyncio.gather(*(_overview(call.request, c) for c in clusters))
    registries = await asyncio.gather(
        *(run_in_threadpool(_registry_state, call, c) for c in clusters)
    )
    rows = [
        ClusterRow(c, o, e, r) for c, (o, e), r in zip(clusters, overviews, registries, strict=True)
    ]
    page = {"rows": rows, "services": call.state.services.status()}
    return Reply(ClustersJson(clusters=[row.as_json() for row in rows]), page=page)


async def topics_page(call: Call) -> Reply:
    cluster = _cluster(call)
    overview, error = await _overview(call.request, cluster)
    show_internal = call.query.get("internal") == "1"
    query = call.query.get("q", "").strip()
    topics: list[TopicInfo] = []
    if overview is not None:
        topics = [
            t
            for t in overview.topics
            if (show_internal or not t.internal) and query.lower() in t.name.lower()
        ]
    elif call.api:
        raise HTTPException(503, error)
    data: TopicsJson | dict[str, Any] = {}  # the page shows the error instead
    if overview is not None:
        data = TopicsJson(
            name=overview.name,
            bootstrap=overview.bootstrap,
            cluster_id=overview.cluster_id,
            controller_id=overview.controller_id,
            brokers=_brokers(overview),
            topics=[topic_json(t) for t in topics],
        )
    page = {"cluster": cluster, "overview": overview, "error": error, "topics": topics,
            "show_internal": show_internal, "query": query}  # fmt: skip
    return Reply(data, page=page)


async def topic_page(call: Call) -> Reply:
    cluster = _cluster(call)
    name = call.path["topic"]
    overview, error = await _overview(call.request, cluster)
    if overview is None:
        if call.api:
            raise HTTPException(503, error)
        page = {"cluster": cluster, "topic": None, "error": error, "name": name}
        return Reply({}, page=page, status=503)
    topic = next((t for t in overview.topics if t.name == name), None)
    if topic is None:
        raise HTTPException(404, f"topic {name!r} does not exist in cluster {cluster.name!r}")
    consumers = await run_in_threadpool(groups_for_topic, call.engine, cluster.name, name)
    data = TopicDetailJson(
        **topic_json(topic),
        cluster=cluster.name,
        consumer_groups=[summary_json(g) for g in consumers],
    )
    page = {"cluster": cluster, "topic": topic, "error": None, "name": name,
            "consumer_groups": consumers}  # fmt: skip
    return Reply(data, page=page)


async def topics_of_the_cluster(call: Call) -> Response:
    """/topics: the topics page of the only cluster; with several, the list of clusters."""
    clusters = call.settings.clusters
    target = urls.cluster(clusters[0].name) if len(clusters) == 1 else "/clusters"
    return RedirectResponse(target, status_code=302)


CLUSTER = p("cluster", STRING, "a configured cluster's name")

ENDPOINTS = [
    Endpoint(topics_of_the_cluster, VIEWER, path="/topics"),
    Endpoint(
        clusters_page, VIEWER, path="/clusters", api="/api/clusters", template="clusters.html",
        summary="Configured clusters, whether each answers, its brokers and topic count.",
        response=ClustersJson,
    ),
    Endpoint(
        topics_page, VIEWER, path="/clusters/{cluster}", api="/api/clusters/{cluster}",
        template="topics.html", partial="_topics_table.html",
        summary="One cluster's brokers and topics with partitions, offsets and sizes.",
        params=(
            CLUSTER,
            q("q", STRING, "topic names containing this text"),
            q("internal", enum("1", "0"), "1: include internal topics"),
        ),
        response=TopicsJson, errors=(404, 503),
    ),
    Endpoint(
        topic_page, VIEWER, path="/clusters/{cluster}/topics/{topic:path}",
        api="/api/clusters/{cluster}/topics/{topic:path}", template="topic.html",
        summary="One topic: partitions, offsets, size and the consumer groups reading it.",
        params=(CLUSTER, p("topic", STRING, "a topic name")),
        response=TopicDetailJson, errors=(404, 503),
    ),
]  # fmt: skip
