"""Topology map: services -> topics -> consumer groups -> services over a time window.

Page /topology?window=<minutes>, JSON twin /api/topology (nodes and edges with kinds,
rates, error rates and origins). What is learned, and from where, is in
collectors/topology.py; Kafka Connect's connectors are added as services that write (source)
or read (sink, through their `connect-<name>` group) the topics their configs name. The
page draws the map as SVG (static/js/graph.js) from the
drawing computed here (console/graph_layout.py): services where they produce, topics,
consumer groups, services where they consume, left to right. The edge table below it
lists the same edges for reading and for screen readers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from collectors import topology as learned
from collectors.config import ClusterConfig
from collectors.topology import Edge, Node, NodeKey, Topology
from console import graph_layout as layout
from console.auth.roles import VIEWER
from console.graph_layout import Box, DrawingJson, Link
from console.operations import connectors
from console.views.requests import window_minutes
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import integer, q

DEFAULT_WINDOW_MIN = 60
MAX_WINDOW_MIN = 7 * 24 * 60
CONNECT_WAIT_S = 3.0


def _window(call: Call) -> int:
    return window_minutes(call.request, DEFAULT_WINDOW_MIN, MAX_WINDOW_MIN)


def node_id(key: NodeKey) -> str:
    return f"{key[0]}:{key[1]}"


def node_url(node: Node, default_cluster: str | None) -> str | None:
    """Where a click on the node leads: topic page, group page, the service's events."""
    cluster = min(node.clusters) if node.clusters else default_cluster
    if node.connect is not None:
        return urls.connector(node.connect[0], node.connect[1], node.name)
    if node.kind == "service":
        return urls.events(source=node.name)
    if node.kind == "topic":
        return urls.events(topic=node.name) if cluster is None else urls.topic(cluster, node.name)
    if node.kind == "group" and not node.synthetic:
        return urls.group(cluster, node.name) if cluster else urls.group("", node.name)
    return None


COLUMNS = {"producer": 0, "topic": 1, "group": 2, "consumer": 3}
LAYER_GAP = 110  # room for the fans of lines between the columns
NAME_CHARS = 24  # four columns leave room for longer lines than lineage's many layers


def _box_id(key: NodeKey, side: str) -> str:
    return f"{side}|{node_id(key)}"


def drawing(topology: Topology, window_s: float) -> DrawingJson:
    """Four columns: services where they produce, topics, consumer groups, services where
    they consume. A service that does both is drawn twice, so every line runs left to
    right; dead-letter lines from a group back to its topic are curves."""
    producing = {source for source, _ in topology.edges}
    consuming = {target for _, target in topology.edges}
    boxes: list[Box] = []
    side: dict[tuple[NodeKey, str], str] = {}  # (node, "from"/"to") -> its box
    for key, node in topology.nodes.items():
        if node.kind == "service":
            roles = [role for role, seen in (("producer", key in producing),
                                             ("consumer", key in consuming)) if seen]  # fmt: skip
            roles = roles or ["producer"]
            for role in roles:
                boxes.append(_box(_box_id(key, role), key, node, COLUMNS[role], window_s,
                                  "produces" if role == "producer" else "consumes"))  # fmt: skip
            side[(key, "from")] = _box_id(key, roles[0])
            side[(key, "to")] = _box_id(key, roles[-1])
        else:
            box_id = _box_id(key, node.kind)
            side[(key, "from")] = side[(key, "to")] = box_id
            boxes.append(_box(box_id, key, node, COLUMNS.get(node.kind, 1), window_s, ""))
    links = [
        Link(side[(edge.source, "from")], side[(edge.target, "to")],
             f"{node_id(edge.source)}->{node_id(edge.target)}")
        for edge in topology.edges.values()
    ]  # fmt: skip
    return layout.draw(boxes, links, layer_gap=LAYER_GAP)


def _box(box_id: str, key: NodeKey, node: Node, column: int, window_s: float, role: str) -> Box:
    lines = layout.label(node.name, NAME_CHARS, 2, bold=True)
    detail = role
    if node.kind == "topic":
        detail = f"{_rate(node.records / window_s)} rec/s"
    elif node.kind == "group" and node.group:
        detail = f"{node.group.get('status') or '?'} · lag {node.group.get('total_lag')}"
    elif node.kind == "group" and node.synthetic:
        detail = "no group id in spans"
    if node.connect is not None:
        detail = f"connector · {detail}"
    if detail:
        lines.append(layout.line(detail))
    title = layout.capped_title(f"{node.kind}: {node.name}", detail,
                                ", ".join(sorted(node.clusters)))  # fmt: skip
    return Box(box_id, node_id(key), column, tuple(lines), title, order=(node.name,))


def _rate(per_s: float) -> str:
    return f"{per_s:.0f}" if per_s >= 10 else f"{per_s:.2f}"


def _node_json(
    key: NodeKey, node: Node, layer: int, xy: tuple[int, int], window_s: float, default: str | None
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


def edge_json(edge: Edge, window_s: float) -> dict[str, Any]:
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
    rate_seconds: float  # rates are per second over this long: the window, or since traffic began
    nodes: list[dict[str, Any]]  # id, kind, name, clusters, url, layer, x, y (+ kind's own)
    edges: list[dict[str, Any]]  # source, target, kind, count, rates, origins, consumers
    drawing: DrawingJson  # where the page draws each node (boxes) and edge (links)


def topology_json(
    topology: Topology, minutes: int, default_cluster: str | None, now_ms: int
) -> TopologyJson:
    # Rates divide by the time traffic was seen, at most the window.
    window_s = topology.seconds_seen(now_ms - minutes * 60_000, now_ms)
    layers = learned.layers(topology)
    drawn = drawing(topology, window_s)
    placed: dict[str, tuple[int, int]] = {}
    for box in drawn["boxes"]:  # a service drawn twice is placed where it produces
        placed.setdefault(
            box["node"], (round(box["x"] + box["w"] / 2), round(box["y"] + box["h"] / 2))
        )
    nodes = [
        _node_json(key, node, layers[key], placed[node_id(key)], window_s, default_cluster)
        for key, node in sorted(topology.nodes.items(), key=lambda item: (layers[item[0]], item[0]))
    ]
    edges = sorted(
        (edge_json(edge, window_s) for edge in topology.edges.values()),
        key=lambda e: (e["from"]["kind"], e["from"]["name"], e["to"]["kind"], e["to"]["name"]),
    )
    return TopologyJson(
        window_minutes=minutes,
        rate_seconds=round(window_s, 1),
        nodes=nodes,
        edges=edges,
        drawing=drawn,
    )


async def _connectors(clusters: Sequence[ClusterConfig]) -> list[learned.ConnectorUse]:
    """Every configured Connect cluster's connectors, if they answer within a few seconds:
    the map is drawn without those that do not."""
    with_connect = [cluster for cluster in clusters if cluster.connect]
    try:
        found = await asyncio.wait_for(
            asyncio.gather(*(connectors.connect_clusters(c) for c in with_connect)),
            CONNECT_WAIT_S,
        )
    except TimeoutError:
        return []
    return [
        learned.ConnectorUse(cluster.name, connect["name"], row["name"], row["type"],
                             tuple(t for t in row["topics"] if not t.startswith("/")))
        for cluster, listed in zip(with_connect, found, strict=True)
        for connect in listed
        for row in connect["connectors"]
    ]  # fmt: skip


async def topology_page(call: Call) -> Reply:
    minutes = _window(call)
    now_ms = int(time.time() * 1000)
    graph = await run_in_threadpool(learned.learn, call.engine, now_ms - minutes * 60_000)
    clusters = call.settings.clusters
    learned.add_connectors(graph, await _connectors(clusters))
    body = topology_json(graph, minutes, clusters[0].name if clusters else None, now_ms)
    by_id = {node["id"]: node for node in body["nodes"]}
    page = {"edges": body["edges"], "nodes": body["nodes"], "by_id": by_id, "window": minutes,
            "rate_seconds": body["rate_seconds"]}  # fmt: skip
    return Reply(body, page=page)


ENDPOINTS = [
    Endpoint(
        topology_page, VIEWER, path="/topology", api="/api/topology", template="topology.html",
        summary="Services, topics and consumer groups learned over a window, as edges.",
        params=(q("window", integer(1, MAX_WINDOW_MIN), "minutes (default 60)"),),
        response=TopologyJson, errors=(400,),
    ),
]  # fmt: skip
