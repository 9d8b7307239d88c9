"""Topology map: services -> topics -> consumer groups -> services over a time window.

Page /topology?window=<minutes>, JSON twin /api/topology (nodes and edges with kinds,
rates, error rates and origins). What is learned, and from where, is in
collectors/topology.py. The page draws the graph with Cytoscape.js (static/js/topology.js)
from preset positions computed here, layered left to right along the flow, and keeps the
edge table below it as the accessible fallback.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from collectors import topology as learned
from collectors.topology import Edge, Node, NodeKey, Topology
from console.auth.roles import VIEWER
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import integer, q

DEFAULT_WINDOW_MIN = 60
MAX_WINDOW_MIN = 7 * 24 * 60
LAYER_GAP_X = 240
ROW_GAP_Y = 80


def _window(call: Call) -> int:
    raw = call.query.get("window") or str(DEFAULT_WINDOW_MIN)
    try:
        minutes = int(raw)
    except ValueError:
        raise HTTPException(400, f"window: not a number of minutes: {raw[:40]!r}") from None
    if not 1 <= minutes <= MAX_WINDOW_MIN:
        raise HTTPException(400, f"window: between 1 and {MAX_WINDOW_MIN} minutes")
    return minutes


def node_id(key: NodeKey) -> str:
    return f"{key[0]}:{key[1]}"


def node_url(node: Node, default_cluster: str | None) -> str | None:
    """Where a click on the node leads: topic page, group page, the service's events."""
    cluster = min(node.clusters) if node.clusters else default_cluster
    if node.kind == "service":
        return urls.events(source=node.name)
    if node.kind == "topic":
        return urls.events(topic=node.name) if cluster is None else urls.topic(cluster, node.name)
    if node.kind == "group" and not node.synthetic:
        return urls.group(cluster, node.name) if cluster else urls.group("", node.name)
    return None


def positions(topology: Topology) -> tuple[dict[NodeKey, int], dict[NodeKey, tuple[int, int]]]:
    """Preset positions: x by layer; within a layer, ordered by the mean row of the
    upstream neighbours (one barycentre pass keeps most edges from crossing)."""
    layers = learned.layers(topology)
    upstream: dict[NodeKey, list[NodeKey]] = {}
    for source, target in topology.edges:
        upstream.setdefault(target, []).append(source)
    by_layer: dict[int, list[NodeKey]] = {}
    for key, layer in layers.items():
        by_layer.setdefault(layer, []).append(key)
    row: dict[NodeKey, float] = {}
    placed: dict[NodeKey, tuple[int, int]] = {}
    for layer in sorted(by_layer):
        keys = by_layer[layer]

        def barycentre(key: NodeKey) -> tuple[float, str, str]:
            rows = [row[s] for s in upstream.get(key, ()) if s in row]
            return (sum(rows) / len(rows) if rows else math.inf, key[0], key[1])

        keys.sort(key=barycentre)
        middle = (len(keys) - 1) / 2
        for index, key in enumerate(keys):
            row[key] = index - middle
            placed[key] = (layer * LAYER_GAP_X, round((index - middle) * ROW_GAP_Y))
    return layers, placed


def _node_json(
    key: NodeKey, node: Node, layer: int, xy: tuple[int, int], window_s: int, default: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": node_id(key),
        "kind": node.kind,
        "name": node.name,
        "clusters": sorted(node.clusters),
        "url": node_url(node, default),
        "layer": layer,
        "x": xy[0],
        "y": xy[1],
    }
    if node.kind == "topic":
        body["records"] = node.records
        body["rate_per_s"] = round(node.records / window_s, 4)
    if node.kind == "group":
        body["synthetic"] = node.synthetic
        body["lag"] = node.group
    return body


def edge_json(edge: Edge, window_s: int) -> dict[str, Any]:
    count = edge.count
    return {
        "id": f"{node_id(edge.source)}->{node_id(edge.target)}",
        "source": node_id(edge.source),
        "target": node_id(edge.target),
        "from": {"kind": edge.source[0], "name": edge.source[1]},
        "to": {"kind": edge.target[0], "name": edge.target[1]},
        "kind": edge.kind,
        "count": count,
        "rate_per_s": round(count / window_s, 4),
        "failed_spans": edge.errors,
        "dead_letters": edge.dead_letters,
        "error_rate": round(min(1.0, edge.failures / count), 4) if count else 0.0,
        "origins": edge.origins,
        "learned_from": ", ".join(edge.origins),
        "consumers": sorted(edge.consumers),
    }


class TopologyJson(TypedDict):
    window_minutes: int
    nodes: list[dict[str, Any]]  # id, kind, name, clusters, url, layer, x, y (+ kind's own)
    edges: list[dict[str, Any]]  # source, target, kind, count, rates, origins, consumers


def topology_json(topology: Topology, minutes: int, default_cluster: str | None) -> TopologyJson:
    window_s = minutes * 60
    layers, placed = positions(topology)
    nodes = [
        _node_json(key, node, layers[key], placed[key], window_s, default_cluster)
        for key, node in sorted(topology.nodes.items(), key=lambda item: (layers[item[0]], item[0]))
    ]
    edges = sorted(
        (edge_json(edge, window_s) for edge in topology.edges.values()),
        key=lambda e: (e["from"]["kind"], e["from"]["name"], e["to"]["kind"], e["to"]["name"]),
    )
    return TopologyJson(window_minutes=minutes, nodes=nodes, edges=edges)


async def topology_page(call: Call) -> Reply:
    minutes = _window(call)
    since_ms = int(time.time() * 1000) - minutes * 60_000
    graph = await run_in_threadpool(learned.learn, call.engine, since_ms)
    clusters = call.settings.clusters
    body = topology_json(graph, minutes, clusters[0].name if clusters else None)
    by_id = {node["id"]: node for node in body["nodes"]}
    page = {"edges": body["edges"], "nodes": body["nodes"], "by_id": by_id, "window": minutes}
    return Reply(body, page=page)


ENDPOINTS = [
    Endpoint(
        topology_page, VIEWER, path="/topology", api="/api/topology", template="topology.html",
        summary="Services, topics and consumer groups learned over a window, as edges.",
        params=(q("window", integer(1, MAX_WINDOW_MIN), "minutes (default 60)"),),
        response=TopologyJson, errors=(400,),
    ),
]  # fmt: skip
