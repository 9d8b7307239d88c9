"""Event lineage: the upstream and downstream graph of one event.

Pages: /lineage (find an event by its event id), /lineage/{cluster}/{topic}/{p}/{o}.
JSON twin: /api/lineage/{cluster}/{topic}/{p}/{o}?max_nodes=N, which the graph on this
page and on the event detail page draws as SVG (static/js/graph.js).

The drawing is computed here (console/graph_layout.py: layers are the breadth-first
distance from the event, causes to the left, effects to the right), so the browser only
places what it is given and a graph of hundreds of nodes appears at once.

The page renders the edge table from the same graph its script then fetches as JSON; the
page hands the graph it computed to that fetch (`Handoff`: used once, within seconds), so
a page load computes the lineage once. Other JSON requests always compute afresh.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from typing_extensions import TypedDict

from collectors import lineage
from collectors.lineage import Edge, LineageGraph
from collectors.traces import Row
from console import graph_layout as layout
from console.auth.roles import VIEWER
from console.graph_layout import Box, DrawingJson, LineJson, Link
from console.stores.events import format_time
from console.views.events import RECORD, event_path
from console.views.requests import record_coordinates
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import integer, q

MAX_LABEL_CHARS = 60


class Handoff:
    """Graphs a page just computed, for the JSON request its script makes right after."""

    def __init__(self, ttl_s: float = 5.0, size: int = 32) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: OrderedDict[tuple[int, int, int], tuple[float, LineageJson]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: tuple[int, int, int], body: LineageJson) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), body)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def take(self, key: tuple[int, int, int]) -> LineageJson | None:
        with self._lock:
            item = self._items.pop(key, None)
        if item is None or time.monotonic() - item[0] > self.ttl_s:
            return None
        return item[1]


handoff = Handoff()


def lineage_path(row: Row, *, api: bool = False) -> str:
    return urls.lineage(row["cluster"], row["topic"], row["partition"], row["offset"], api=api)


def drawing(graph: LineageGraph) -> DrawingJson:
    """Boxes by breadth-first layer (causes left, effects right), in time order within a
    layer before the crossings are reduced; each box names the event type first."""
    boxes = [
        Box(f"e{node_id}", f"e{node_id}", graph.layers[node_id], tuple(_lines(row)),
            _title(row, graph.failed.get(node_id)), order=(row["timestamp_ms"], node_id))
        for node_id, row in graph.nodes.items()
    ]  # fmt: skip
    links = [
        Link(f"e{edge.source}", f"e{edge.target}", _edge_id(edge)) for edge in graph.edges.values()
    ]
    return layout.draw(boxes, links)


def _edge_id(edge: Edge) -> str:
    return f"{edge.kind}:{edge.source}-{edge.target}"


def _lines(row: Row) -> list[LineJson]:
    coordinates = layout.line(f"[{row['partition']}] @{row['offset']}")
    if not row["event_type"]:
        return [*layout.label(row["topic"], layout.BOLD_LINE_CHARS, 2, bold=True), coordinates]
    return [
        *layout.label(row["event_type"], layout.BOLD_LINE_CHARS, 1, bold=True),
        *layout.label(row["topic"]),
        coordinates,
    ]


def _title(row: Row, failed: str | None) -> str:
    return layout.capped_title(
        row["event_type"] or "",
        f"{row['topic']} [{row['partition']}] @{row['offset']}",
        format_time(row["timestamp_ms"]),
        failed or "",
    )


def _label(row: Row) -> str:
    head = row["event_type"] or row["topic"]
    text = f"{head}\n{row['topic']} [{row['partition']}] @{row['offset']}"
    return text if len(text) <= MAX_LABEL_CHARS * 2 else text[: MAX_LABEL_CHARS * 2] + "…"


class LineageNodeJson(TypedDict):
    id: str
    label: str
    cluster: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    time: str
    layer: int  # breadth-first distance: causes < 0 < effects
    root: bool
    dlq: bool
    failed: str | None
    url: str
    x: int
    y: int


class LineageEdgeJson(TypedDict):
    id: str
    source: str
    target: str
    kind: str  # causation, trace, dead-letter, correlation
    via: str | None


class LineageJson(TypedDict):
    root: str
    nodes: list[LineageNodeJson]
    edges: list[LineageEdgeJson]
    truncated: bool
    upstream: int
    downstream: int
    drawing: DrawingJson  # where the page draws each event (boxes) and edge (links)


def graph_json(graph: LineageGraph) -> LineageJson:
    drawn = drawing(graph)
    centres = {
        box["node"]: (round(box["x"] + box["w"] / 2), round(box["y"] + box["h"] / 2))
        for box in drawn["boxes"]
    }
    nodes = []
    for node_id, row in graph.nodes.items():
        x, y = centres[f"e{node_id}"]
        nodes.append(
            {
                "id": f"e{node_id}",
                "label": _label(row),
                "cluster": row["cluster"],
                "topic": row["topic"],
                "partition": row["partition"],
                "offset": row["offset"],
                "event_id": row["event_id"],
                "event_type": row["event_type"],
                "time": format_time(row["timestamp_ms"]),
                "layer": graph.layers[node_id],
                "root": node_id == graph.root,
                "dlq": bool(row["is_dlq"]),
                "failed": graph.failed.get(node_id),
                "url": event_path(row),
                "x": x,
                "y": y,
            }
        )
    edges = [
        {
            "id": _edge_id(edge),
            "source": f"e{edge.source}",
            "target": f"e{edge.target}",
            "kind": edge.kind,
            "via": edge.via,
        }
        for edge in graph.edges.values()
    ]
    return LineageJson(
        root=f"e{graph.root}",
        nodes=nodes,  # type: ignore[typeddict-item]
        edges=edges,  # type: ignore[typeddict-item]
        truncated=graph.truncated,
        upstream=sum(1 for layer in graph.layers.values() if layer < 0),
        downstream=sum(1 for layer in graph.layers.values() if layer > 0),
        drawing=drawn,
    )


def _max_nodes(call: Call) -> int:
    raw = call.query.get("max_nodes")
    if raw is None or raw == "":
        return lineage.DEFAULT_MAX_NODES
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"max_nodes: not an integer: {raw[:40]!r}") from None
    if not 1 <= value <= lineage.MAX_NODES:
        raise HTTPException(400, f"max_nodes: between 1 and {lineage.MAX_NODES}")
    return value


async def lineage_page(call: Call) -> Reply:
    cluster, topic, partition, offset = record_coordinates(call.request)
    max_nodes = _max_nodes(call)
    root = await run_in_threadpool(
        lineage.flow_row_at, call.engine, cluster, topic, partition, offset
    )
    if root is None:
        raise HTTPException(404, f"no indexed event at {cluster}/{topic}/{partition}@{offset}")
    key = (id(call.engine), root["id"], max_nodes)
    if call.api:
        body = handoff.take(key)
        if body is None:
            graph = await run_in_threadpool(lineage.lineage, call.engine, root, max_nodes)
            body = graph_json(graph)
        return Reply(body)
    graph = await run_in_threadpool(lineage.lineage, call.engine, root, max_nodes)
    body = graph_json(graph)
    handoff.put(key, body)
    explicit_cap = "max_nodes" in call.query
    page = {
        "root": root,
        "root_path": event_path(root),
        "graph": body,
        "by_id": {node["id"]: node for node in body["nodes"]},
        "api_url": lineage_path(root, api=True)
        + (f"?max_nodes={max_nodes}" if explicit_cap else ""),
    }
    return Reply(body, page=page)


async def lineage_search(call: Call) -> Reply | Response:
    """/lineage?event_id=...: one match opens its lineage, several are listed."""
    event_id = (call.query.get("event_id") or "").strip()
    if len(event_id) > 1_000 or "\x00" in event_id:
        raise HTTPException(400, "event_id: longer than 1000 characters or contains NUL")
    matches = (
        await run_in_threadpool(lineage.flow_rows_with_event_id, call.engine, event_id)
        if event_id
        else []
    )
    if len(matches) == 1:
        return RedirectResponse(lineage_path(matches[0]), status_code=303)
    page = {
        "event_id": event_id,
        "matches": [{**m, "lineage_url": lineage_path(m), "time": format_time(m["timestamp_ms"])}
                    for m in matches],
    }  # fmt: skip
    return Reply({}, page=page, status=404 if event_id and not matches else 200)


ENDPOINTS = [
    Endpoint(lineage_search, VIEWER, path="/lineage", template="lineage_search.html"),
    Endpoint(
        lineage_page, VIEWER, path="/lineage/{cluster}/{topic}/{partition}/{offset}",
        api="/api/lineage/{cluster}/{topic}/{partition}/{offset}", template="lineage.html",
        summary="Upstream and downstream lineage graph of one event, with its drawing.",
        params=(*RECORD, q("max_nodes", integer(1, lineage.MAX_NODES),
                           "cap on the nodes returned")),
        response=LineageJson, errors=(400, 404),
    ),
]  # fmt: skip
