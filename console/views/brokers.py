"""A cluster's brokers: the list with each broker's log directories, and one broker's
configs (where each value comes from, sensitive values hidden). Read only; every role.

Pages: /clusters/{cluster}/brokers and /clusters/{cluster}/brokers/{broker_id}, JSON twins
under /api. The broker id is read here rather than by the route, so "x" or "-1" answer a
404 in words instead of the router's bare one.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from collectors.config import ClusterConfig
from console.auth.roles import VIEWER
from console.operations import brokers
from console.operations.configs import MAX_QUERY, named
from console.views.operating import cluster_of, kafka_refusals
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, p, q, text

MAX_BROKER_ID = 2**31 - 1


def _cluster(call: Call) -> ClusterConfig:
    return cluster_of(call, call.path["cluster"], 404)


def _broker_id(call: Call) -> int:
    raw = str(call.path["broker_id"])
    if not raw.isdigit() or int(raw) > MAX_BROKER_ID:
        raise HTTPException(404, f"broker: {raw[:40]!r} is not a broker id (a whole number)")
    return int(raw)


async def brokers_page(call: Call) -> Reply:
    cluster = _cluster(call)
    try:
        found = await brokers.brokers(cluster)
    except Exception as exc:
        error = f"cannot reach {cluster.bootstrap}: {type(exc).__name__}: {exc}"[:500]
        if call.api:
            raise HTTPException(502, error) from None
        empty = brokers.BrokersJson(cluster=cluster.name, cluster_id=None, controller_id=None,
                                    brokers=[])  # fmt: skip
        return Reply(empty, page={"error": error}, status=502)
    return Reply(found, page={"error": None})


async def broker_page(call: Call) -> Reply:
    cluster = _cluster(call)
    broker_id = _broker_id(call)
    query = call.query.get("q", "").strip()[:MAX_QUERY]
    with kafka_refusals():
        try:
            found = await brokers.broker_configs(cluster, broker_id)
        except brokers.NoSuchBroker as exc:
            raise HTTPException(404, str(exc)) from None
    found["configs"] = named(found["configs"], query)
    return Reply(found, page={"query": query})


CLUSTER = p("cluster", STRING, "a configured cluster's name")
BROKER = p("broker_id", STRING, "the broker's id (node.id)")


ENDPOINTS = [
    Endpoint(
        brokers_page, VIEWER, path="/clusters/{cluster}/brokers",
        api="/api/clusters/{cluster}/brokers", template="brokers.html",
        summary="The cluster's id, controller and brokers, with each broker's log "
                "directories (partitions, size, the disk's total and usable bytes).",
        params=(CLUSTER,), response=brokers.BrokersJson, errors=(404, 502),
    ),
    Endpoint(
        broker_page, VIEWER, path="/clusters/{cluster}/brokers/{broker_id}",
        api="/api/clusters/{cluster}/brokers/{broker_id}", template="broker.html",
        summary="One broker's configs: value, source, read-only; sensitive values hidden.",
        params=(CLUSTER, BROKER, q("q", text(MAX_QUERY), "config names containing this text")),
        response=brokers.BrokerConfigsJson, errors=(400, 404, 502),
    ),
]  # fmt: skip
