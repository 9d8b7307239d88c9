"""The learned event catalog: every event type the index saw in a window, with its topics,
producers, consumers, rate, first and last seen; one type's shape learned from samples, a
masked example, the sagas it takes part in and links to its records, lineage and the
topology; the whole catalog of a cluster as an AsyncAPI 3.0 document.

Pages: /catalog (filter by cluster and text, window in minutes) and
/catalog/{cluster}/{event_type}; JSON twins under /api/catalog; the AsyncAPI export at
/api/asyncapi/{cluster} (a download). Computed on demand from the index (bounded queries,
console/stores/catalog.py), off the ingest path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from typing_extensions import TypedDict

from collectors import topology as learned
from console import asyncapi, catalog_shapes
from console.auth.roles import VIEWER
from console.stores import catalog as store
from console.stores import events as event_store
from console.stores.masking import masker_for
from console.views.operating import cluster_of
from console.views.requests import window_minutes
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, integer, p, q, text

T = TypeVar("T")
DEFAULT_WINDOW_MIN = 24 * 60
MAX_WINDOW_MIN = 7 * 24 * 60
MAX_EXAMPLE_CHARS = 16 * 1024


class CountJson(TypedDict):
    name: str
    records: int


class CatalogEntryJson(TypedDict):
    cluster: str
    event_type: str
    records: int
    per_minute: float
    first_seen: str | None
    last_seen: str | None
    topics: list[CountJson]
    producers: list[CountJson]
    consumers: list[str]  # consumer groups and services reading its topics
    link: str
    records_link: str


class CatalogJson(TypedDict):
    window_minutes: int
    types: list[CatalogEntryJson]


class ShapePathJson(TypedDict):
    path: str
    types: str


class ShapeChangeJson(TypedDict):
    change: str  # added, type (a path seen with another type) or removed
    path: str
    types: str
    was: str | None  # the types before, for `type`
    time: str
    link: str  # the first record with the change (the last one with the path, for removed)


class SchemaInUseJson(TypedDict):
    topic: str
    part: str
    schema_id: int
    first_seen: str
    last_seen: str


class CatalogTypeJson(CatalogEntryJson):
    samples: int
    shape: list[ShapePathJson]
    shape_changes: list[ShapeChangeJson]  # over the newest 400 records of the window
    schemas: list[SchemaInUseJson]
    schema: dict[str, Any]
    example: Any
    example_link: str | None
    example_lineage: str | None
    sagas: list[str]


async def _read(call: Call, query: Callable[..., T], *args: Any) -> T:
    """A store query on a connection of its own, in the thread pool."""
    return await run_in_threadpool(store.read, call.engine, query, *args)


def _window(call: Call) -> int:
    return window_minutes(call.request, DEFAULT_WINDOW_MIN, MAX_WINDOW_MIN)


def _counts(found: dict[str, int]) -> list[CountJson]:
    return [CountJson(name=name, records=n)
            for name, n in sorted(found.items(), key=lambda item: (-item[1], item[0]))]  # fmt: skip


def _time(ms: int | None) -> str | None:
    return event_store.format_time(ms) if ms is not None else None


def _services(edges: Iterable[learned.Edge]) -> set[str]:
    return {f"service {edge.target[1]}" for edge in edges}


def consumers_of(topology: learned.Topology, topics: Iterable[str]) -> list[str]:
    """Groups reading these topics, and the services behind them (spans, assignments)."""
    found: set[str] = set()
    for topic in topics:
        for edge in topology.edges_from(("topic", topic), "group"):
            found.add(f"group {edge.target[1]}")
            found |= _services(topology.edges_from(edge.target, "service"))
        found |= _services(topology.edges_from(("topic", topic), "service"))
    return sorted(found)


def per_minute(seen: store.TypeSeen, minutes: int, now_ms: int) -> float:
    """Over the time the type was seen (a type that began ten minutes ago is not diluted
    over a day), at least a minute, at most the window."""
    seen_min = (now_ms - (seen.first_ms or now_ms)) / 60_000
    return round(seen.count / max(1.0, min(float(minutes), seen_min)), 3)


def _entry(seen: store.TypeSeen, topology: learned.Topology, minutes: int) -> CatalogEntryJson:
    return CatalogEntryJson(
        cluster=seen.cluster, event_type=seen.event_type, records=seen.count,
        per_minute=per_minute(seen, minutes, int(time.time() * 1000)),
        first_seen=_time(seen.first_ms), last_seen=_time(seen.last_ms),
        topics=_counts(seen.topics), producers=_counts(seen.producers),
        consumers=consumers_of(topology, seen.topics),
        link=urls.catalog_type(seen.cluster, seen.event_type),
        records_link=urls.events(cluster=seen.cluster, event_type=seen.event_type),
    )  # fmt: skip


def _gather(call: Call, minutes: int, cluster: str | None, event_type: str | None = None,
            ) -> tuple[list[store.TypeSeen], learned.Topology]:  # fmt: skip
    since = int(time.time() * 1000) - minutes * 60_000
    types = store.read(call.engine, store.types_seen, since, cluster, event_type)
    return types, learned.learn(call.engine, since)


async def catalog_page(call: Call) -> Reply:
    minutes = _window(call)
    cluster = call.query.get("cluster", "") or None
    if cluster:
        cluster_of(call, cluster, 404)
    needle = call.query.get("q", "").strip().lower()[:200]
    types, topology = await run_in_threadpool(_gather, call, minutes, cluster)
    entries = [_entry(seen, topology, minutes) for seen in types]
    if needle:
        entries = [e for e in entries if needle in _searchable(e)]
    page = {"filters": {"cluster": cluster or "", "q": needle, "window": minutes},
            "cluster_names": [c.name for c in call.settings.clusters]}  # fmt: skip
    return Reply(CatalogJson(window_minutes=minutes, types=entries), page=page)


def _searchable(entry: CatalogEntryJson) -> str:
    names = [entry["event_type"], *(t["name"] for t in entry["topics"]),
             *(p["name"] for p in entry["producers"]), *entry["consumers"]]  # fmt: skip
    return "\n".join(names).lower()


async def _example(call: Call, newest: dict[str, Any] | None) -> Any:
    """The newest sample as this caller may see it (the masking rules apply)."""
    if newest is None:
        return None
    at = (newest["cluster"], newest["topic"], newest["partition"], newest["offset"])
    row = await run_in_threadpool(event_store.get_event, call.engine, *at)
    if row is None:
        return None
    mask: Callable[[dict[str, Any]], dict[str, Any]] = await masker_for(call.request)
    example = catalog_shapes.payload_of(mask(row))
    return example if len(json.dumps(example, default=str)) <= MAX_EXAMPLE_CHARS else None


async def type_page(call: Call) -> Reply:
    minutes = _window(call)
    cluster = cluster_of(call, call.path["cluster"], 404).name
    event_type = call.path["event_type"]
    types, topology = await run_in_threadpool(_gather, call, minutes, cluster, event_type)
    if not types:
        raise HTTPException(404, f"no event of type {event_type[:200]!r} on {cluster} in the "
                                 f"last {minutes} minutes")  # fmt: skip
    since = int(time.time() * 1000) - minutes * 60_000
    rows = await _read(call, store.samples, cluster, event_type, since)
    sagas = await _read(call, store.saga_types, cluster, event_type, since)
    payloads = [
        found for found in (catalog_shapes.payload_of(row) for row in rows) if found is not None
    ]
    changes = await run_in_threadpool(_changes, call, cluster, event_type, since)
    schemas = await _read(call, store.schemas_in_use, cluster,
                                      [t for t in types[0].topics])  # fmt: skip
    newest = rows[0] if rows else None
    at = ((newest["cluster"], newest["topic"], newest["partition"], newest["offset"])
          if newest else None)  # fmt: skip
    body = CatalogTypeJson(
        **_entry(types[0], topology, minutes), samples=len(payloads),
        shape=[ShapePathJson(path=path, types=kinds)
               for path, kinds in catalog_shapes.paths(payloads)],
        schema=catalog_shapes.json_schema(payloads), example=await _example(call, newest),
        example_link=urls.event(*at) if at else None,
        example_lineage=urls.lineage(*at) if at else None, sagas=sagas,
        shape_changes=changes,
        schemas=[SchemaInUseJson(topic=r["topic"], part=r["part"], schema_id=r["schema_id"],
                                 first_seen=event_store.format_time(r["first_seen_ms"]),
                                 last_seen=event_store.format_time(r["last_seen_ms"]))
                 for r in schemas],
    )  # fmt: skip
    return Reply(body, page={"window": minutes})


def _changes(call: Call, cluster: str, event_type: str, since: int) -> list[ShapeChangeJson]:
    rows = store.read(call.engine, store.drift_samples, cluster, event_type, since)
    readable = [
        (row, payload) for row in rows if (payload := catalog_shapes.payload_of(row)) is not None
    ]
    return [
        ShapeChangeJson(
            change=found["change"], path=found["path"], types=found["types"],
            was=found.get("was"), time=event_store.format_time(found["at"]["timestamp_ms"]),
            link=urls.event(found["at"]["cluster"], found["at"]["topic"],
                            found["at"]["partition"], found["at"]["offset"]),
        )
        for found in catalog_shapes.drift(readable)
    ]  # fmt: skip


async def asyncapi_export(call: Call) -> JSONResponse:
    """The document itself (not wrapped): what a file saved from it should hold."""
    minutes = _window(call)
    cluster = cluster_of(call, call.path["cluster"], 404)
    since = int(time.time() * 1000) - minutes * 60_000
    types = await _read(call, store.types_seen, since, cluster.name)
    messages = []
    for seen in types:
        rows = await _read(call, store.samples, cluster.name,
                                       seen.event_type, since)  # fmt: skip
        payloads = [
            found for found in (catalog_shapes.payload_of(row) for row in rows) if found is not None
        ]
        messages.append(asyncapi.CatalogMessage(
            event_type=seen.event_type, topics=tuple(seen.topics),
            producers=tuple(sorted(seen.producers)),
            payload=catalog_shapes.json_schema(payloads),
            example=await _example(call, rows[0] if rows else None),
        ))  # fmt: skip
    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = asyncapi.document(cluster.name, cluster.bootstrap, messages, generated)
    disposition = f'attachment; filename="asyncapi-{asyncapi.safe_key(cluster.name, set())}.json"'
    return JSONResponse(document, headers={"Content-Disposition": disposition})


WINDOW = q("window", integer(1, MAX_WINDOW_MIN), "minutes (default 1440: a day)")

ENDPOINTS = [
    Endpoint(
        catalog_page, VIEWER, path="/catalog", api="/api/catalog", template="catalog.html",
        summary="Every event type seen in the window: topics, producers, consumers, rate.",
        params=(q("cluster", STRING, "only this cluster"),
                q("q", text(200), "type, topic, producer or consumer contains this"), WINDOW),
        response=CatalogJson, errors=(400, 404),
    ),
    Endpoint(
        type_page, VIEWER, path="/catalog/{cluster}/{event_type:text}",
        api="/api/catalog/{cluster}/{event_type:text}", template="catalog_type.html",
        summary="One event type: its shape learned from samples, a masked example, sagas.",
        params=(p("cluster", STRING, "the cluster"), p("event_type", STRING, "the event type"),
                WINDOW),
        response=CatalogTypeJson, errors=(400, 404),
    ),
    Endpoint(
        asyncapi_export, VIEWER, api="/api/asyncapi/{cluster}",
        summary="The cluster's event catalog as an AsyncAPI 3.0 document (a download).",
        description="Topics as channels, event types as messages with the payload schema "
                    "learned from their samples (examples masked), producers per topic.",
        params=(p("cluster", STRING, "the cluster"), WINDOW),
        response={"type": "object"}, errors=(400, 404),
    ),
]  # fmt: skip
