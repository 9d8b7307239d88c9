"""Correlation trace: one timeline of every record and span of a flow.

Pages: /trace (search box), /trace/{reference} where the reference is a correlation id,
an event id or a trace id, zoomed with ?from_ms=&to_ms= (ms after the flow's start).
JSON twin: /api/trace/{reference}, with the same zoom.

The timeline is laid out on the server (bars are percentages of the lane, on an axis where
long idle stretches are collapsed: console/trace_axis.py), so the page reads without
JavaScript; static/js/trace.js adds the minimap navigation and the zoom brush, which asks
the server for the range that was dragged across.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Required

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from typing_extensions import TypedDict

from collectors import traces
from collectors.traces import Flow, Row
from console.auth.roles import VIEWER
from console.stores.events import format_time
from console.stores.masking import masker_for
from console.trace_axis import (
    Gap,
    Scale,
    Tick,
    broken_scale,
    format_duration,
    idle_gaps,
    label_lines,
    ticks,
)
from console.views.events import event_path
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import p, q, text

MAX_REFERENCE_CHARS = 1_000
MINIMAP_ROWS = 30  # flows with more rows than this get a minimap
RETRY_TOPIC = re.compile(r".*[-._]retry(?:[-._]\d+)?$", re.IGNORECASE)
MAX_SHOWN_ATTRIBUTES = 64
MAX_OFFSET_MS = 1e12  # a zoom bound beyond this (31 years) is no offset of a flow


@dataclass
class Item:
    """One timeline row: a span (a bar) or a record (a point)."""

    kind: str  # "span" or "record"
    service: str
    label: str  # a record's event type (its coordinates when it has none), a span's name
    start_ms: float
    end_ms: float
    error: str | None = None
    flags: list[str] = field(default_factory=list)
    url: str | None = None
    where: str = ""  # a record's topic [partition] @offset, shown beside its event type
    when: str = ""  # a span's duration, a record's time after the flow's start
    detail: dict[str, Any] = field(default_factory=dict)
    left: float = 0.0
    width: float = 0.0


@dataclass(frozen=True)
class Window:
    """The part of the flow a zoom shows, in ms from the flow's start."""

    from_ms: float
    to_ms: float


@dataclass(frozen=True)
class ShownGap:
    """A collapsed idle stretch and where its break mark sits on the lane."""

    gap: Gap
    left: float
    width: float
    line: int = 0  # its label's line under the ticks: 1 when the previous label is near

    @classmethod
    def on(cls, scale: Scale, gap: Gap) -> ShownGap:
        left = scale.percent(gap.from_ms)
        return cls(gap, left, round(scale.percent(gap.to_ms) - left, 3))

    @property
    def center(self) -> float:
        return self.left + self.width / 2

    @property
    def idle(self) -> str:
        return format_duration(self.gap.idle_ms)

    @property
    def label(self) -> str:
        return f"⋯ {self.idle} idle ⋯"


@dataclass
class Timeline:
    start_ms: float
    end_ms: float
    groups: list[tuple[str, list[Item]]]
    latencies: list[dict[str, Any]]
    gaps: list[ShownGap]
    errors: list[Item]
    scale: Scale
    ticks: list[Tick]
    window: Window | None = None
    total_rows: int = 0
    total_services: int = 0

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms

    @property
    def row_count(self) -> int:
        return sum(len(items) for _, items in self.groups)

    def segments_json(self) -> list[list[float]]:
        """[from_ms, to_ms, left %, right %] per stretch: what the zoom brush inverts."""
        return [[s.from_ms, s.to_ms, s.left, s.right] for s in self.scale.segments]


def _span_ms(value_ns: int) -> float:
    return value_ns / 1_000_000


def _producer_services(flow: Flow) -> dict[traces.Context, str]:
    return {
        (s["trace_id"], s["span_id"]): s["service_name"] for s in flow.spans if s["service_name"]
    }


def _record_item(row: Row, services: dict[traces.Context, str]) -> Item:
    context = traces.record_context(row)
    service = (
        (services.get(context) if context else None) or row["source"] or f"topic {row['topic']}"
    )
    flags = []
    error = None
    if row["is_dlq"]:
        flags.append("dlq")
        error = f"dead letter: {row['dlq_error_class'] or 'unknown error'}"
        if row["dlq_error_message"]:
            error += f": {row['dlq_error_message'][:200]}"
    if RETRY_TOPIC.match(row["topic"]) or (row["dlq_attempts"] or 0) > 1:
        flags.append("retry")
    where = f"{row['topic']} [{row['partition']}] @{row['offset']}"
    return Item(
        kind="record",
        service=service,
        label=row["event_type"] or where,
        where=where if row["event_type"] else "",
        start_ms=float(row["timestamp_ms"]),
        end_ms=float(row["timestamp_ms"]),
        error=error,
        flags=flags,
        url=event_path(row),
        detail={
            "cluster": row["cluster"],
            "topic": row["topic"],
            "partition": row["partition"],
            "offset": row["offset"],
            "time": format_time(row["timestamp_ms"]),
            "event_id": row["event_id"],
            "event_type": row["event_type"],
            "correlation_id": row["correlation_id"],
            "causation_id": row["causation_id"],
            "trace_id": row["trace_id"],
            "span_id": row["span_id"],
        },
    )


def _loads(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return default


def _span_item(span: Row) -> Item:
    attributes = _loads(span["attributes"], {})
    error = None
    if span["status_code"] == traces.STATUS_ERROR:
        error = f"span failed: {span['status_message'] or 'error status'}"
    flags = ["error"] if error else []
    if span["messaging_operation"] and "retry" in span["messaging_operation"]:
        flags.append("retry")
    kind = traces.SPAN_KIND_NAMES[span["kind"]] if 0 <= span["kind"] < 6 else "unspecified"
    return Item(
        kind="span",
        service=span["service_name"] or "unknown service",
        label=span["name"] or "(unnamed span)",
        start_ms=_span_ms(span["start_ns"]),
        end_ms=max(_span_ms(span["end_ns"]), _span_ms(span["start_ns"])),
        error=error,
        flags=flags,
        detail={
            "trace_id": span["trace_id"],
            "span_id": span["span_id"],
            "parent_span_id": span["parent_span_id"],
            "span_kind": kind,
            "duration_ms": round(span["duration_ns"] / 1_000_000, 3),
            "status_code": span["status_code"],
            "status_message": span["status_message"],
            "consumer_group": span["consumer_group"],
            "attributes": dict(list(attributes.items())[:MAX_SHOWN_ATTRIBUTES]),
            "events": _loads(span["events"], [])[:MAX_SHOWN_ATTRIBUTES],
            "links": _loads(span["links"], [])[:MAX_SHOWN_ATTRIBUTES],
        },
    )


def _processing(flow: Flow) -> list[tuple[Row, Row]]:
    """(record, span that processed it) pairs, matched within the flow (no queries)."""
    by_coordinates: dict[tuple[str, int, int], list[Row]] = {}
    by_context: dict[traces.Context, list[Row]] = {}
    for row in flow.events:
        by_coordinates.setdefault((row["topic"], row["partition"], row["offset"]), []).append(row)
        if context := traces.record_context(row):
            by_context.setdefault(context, []).append(row)
    pairs: dict[tuple[int, traces.Context], tuple[Row, Row]] = {}
    for span in flow.spans:
        if traces.is_producer(span):
            continue
        matched: list[Row] = list(
            by_coordinates.get((span["topic"], span["partition"], span["offset"]), [])
        )
        if traces.is_consumer(span) and span["parent_span_id"]:
            matched += [
                r
                for r in by_context.get((span["trace_id"], span["parent_span_id"]), [])
                if span["topic"] in (None, r["topic"]) and span["offset"] in (None, r["offset"])
            ]
        for link in _loads(span["links"], []):
            matched += [
                r
                for r in by_context.get((link["trace_id"], link["span_id"]), [])
                if span["topic"] in (None, r["topic"])
            ]
        for row in matched:
            pairs[(row["id"], (span["trace_id"], span["span_id"]))] = (row, span)
    return list(pairs.values())


def _latencies(flow: Flow) -> list[dict[str, Any]]:
    per_group: dict[str, list[float]] = {}
    for row, span in _processing(flow):
        group = span["consumer_group"] or f"({span['service_name'] or 'unknown'})"
        per_group.setdefault(group, []).append(_span_ms(span["start_ns"]) - row["timestamp_ms"])
    return [
        {
            "consumer_group": group,
            "records": len(values),
            "avg_ms": round(sum(values) / len(values), 1),
            "max_ms": round(max(values), 1),
        }
        for group, values in sorted(per_group.items())
    ]


def _overlaps(item: Item, start_ms: float, window: Window) -> bool:
    return item.start_ms - start_ms <= window.to_ms and item.end_ms - start_ms >= window.from_ms


def build_timeline(flow: Flow, window: Window | None = None) -> Timeline:
    """The flow's rows by service on one axis, where idle stretches are collapsed; with a
    window, only the rows that overlap it, on an axis of the window alone."""
    services = _producer_services(flow)
    items = [_record_item(row, services) for row in flow.events]
    items += [_span_item(span) for span in flow.spans]
    start = min((i.start_ms for i in items), default=0.0)
    end = max((i.end_ms for i in items), default=0.0)
    every_service = {i.service for i in items}
    shown = items
    if window is not None:
        last = end - start
        window = Window(min(max(window.from_ms, 0.0), last), min(window.to_ms, last))
        shown = [i for i in items if _overlaps(i, start, window)]
    axis_from, axis_to = (window.from_ms, window.to_ms) if window else (0.0, end - start)
    gaps = idle_gaps(((i.start_ms - start, i.end_ms - start) for i in shown), axis_from, axis_to)
    scale = broken_scale(axis_from, axis_to, gaps)
    for item in shown:
        item.left = scale.percent(item.start_ms - start)
        item.width = round(scale.percent(item.end_ms - start) - item.left, 3)
        item.when = (
            format_duration(item.end_ms - item.start_ms)
            if item.kind == "span"
            else f"+{format_duration(item.start_ms - start)}"
        )
    shown_gaps = [ShownGap.on(scale, gap) for gap in gaps]
    lines = label_lines([gap.center for gap in shown_gaps])
    shown_gaps = [
        dataclasses.replace(g, line=line) for g, line in zip(shown_gaps, lines, strict=True)
    ]
    grouped: dict[str, list[Item]] = {}
    for item in sorted(shown, key=lambda i: (i.start_ms, i.kind != "span")):
        grouped.setdefault(item.service, []).append(item)
    return Timeline(
        start_ms=start,
        end_ms=end,
        groups=list(grouped.items()),
        latencies=_latencies(flow),
        gaps=shown_gaps,
        errors=[i for i in items if i.error or "retry" in i.flags],
        scale=scale,
        ticks=ticks(scale),
        window=window,
        total_rows=len(items),
        total_services=len(every_service),
    )


class TraceItemJson(TypedDict, total=False):
    """A timeline row; records add their coordinates and ids (their label is their
    event_type when they have one), spans their span fields."""

    kind: Required[str]
    label: Required[str]
    offset_ms: Required[float]
    duration_ms: Required[float]
    error: Required[str | None]
    flags: Required[list[str]]
    links: Required[dict[str, str]]


class ServiceRowsJson(TypedDict):
    service: str
    items: list[TraceItemJson]


class LatencyJson(TypedDict):
    consumer_group: str
    records: int
    avg_ms: float
    max_ms: float


class GapJson(TypedDict):
    """An idle stretch collapsed on the axis: epoch ms, and ms from the flow's start."""

    from_ms: float
    to_ms: float
    idle_ms: float
    offset_ms: float
    label: str


class TickJson(TypedDict):
    offset_ms: float
    label: str


class WindowJson(TypedDict):
    """The zoom: the part of the flow shown, in ms from its start (?from_ms=&to_ms=)."""

    from_ms: float
    to_ms: float
    shown_rows: int
    total_rows: int


class TraceJson(TypedDict):
    reference: str
    matched_by: str | None
    start: str | None
    duration_ms: float
    record_count: int
    span_count: int
    truncated: bool
    services: list[ServiceRowsJson]
    consumer_latency: list[LatencyJson]
    gaps: list[GapJson]
    ticks: list[TickJson]
    window: WindowJson | None
    problems: list[TraceItemJson]


def _item_json(item: Item, start_ms: float) -> TraceItemJson:
    # A span's detail holds its span links under "links"; in the JSON they are
    # "span_links", so that "links" means the same on every item: where its JSON is.
    detail = {
        ("span_links" if key == "links" else key): value for key, value in item.detail.items()
    }
    body: dict[str, Any] = {
        **detail,
        "kind": item.kind,
        "label": item.label,
        "offset_ms": round(item.start_ms - start_ms, 3),
        "duration_ms": round(item.end_ms - item.start_ms, 3),
        "error": item.error,
        "flags": item.flags,
        "links": {"self": "/api" + item.url} if item.url else {},
    }
    return body  # type: ignore[return-value]  # the detail keys vary by kind


def timeline_json(flow: Flow, timeline: Timeline) -> TraceJson:
    return TraceJson(
        reference=flow.reference,
        matched_by=flow.matched_by,
        start=format_time(int(timeline.start_ms)) if timeline.row_count else None,
        duration_ms=round(timeline.duration_ms, 3),
        record_count=len(flow.events),
        span_count=len(flow.spans),
        truncated=flow.truncated,
        services=[
            ServiceRowsJson(service=name, items=[_item_json(i, timeline.start_ms) for i in items])
            for name, items in timeline.groups
        ],
        consumer_latency=timeline.latencies,  # type: ignore[typeddict-item]
        gaps=[
            GapJson(
                from_ms=round(timeline.start_ms + g.gap.from_ms, 3),
                to_ms=round(timeline.start_ms + g.gap.to_ms, 3),
                idle_ms=round(g.gap.idle_ms, 1),
                offset_ms=round(g.gap.from_ms, 3),
                label=g.label,
            )
            for g in timeline.gaps
        ],
        ticks=[TickJson(offset_ms=round(t.ms, 6), label=t.label) for t in timeline.ticks],
        window=WindowJson(
            from_ms=round(timeline.window.from_ms, 3),
            to_ms=round(timeline.window.to_ms, 3),
            shown_rows=timeline.row_count,
            total_rows=timeline.total_rows,
        )
        if timeline.window
        else None,
        problems=[_item_json(i, timeline.start_ms) for i in timeline.errors],
    )


def _reference(raw: str) -> str:
    reference = raw.strip()
    if not reference:
        raise HTTPException(400, "give a correlation id, event id or trace id")
    if len(reference) > MAX_REFERENCE_CHARS:
        raise HTTPException(400, f"the id is longer than {MAX_REFERENCE_CHARS} characters")
    if "\x00" in reference:
        raise HTTPException(400, "the id contains a NUL character")
    return reference


def _offset(call: Call, name: str) -> float | None:
    raw = call.query.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= MAX_OFFSET_MS:  # also refuses nan
        raise HTTPException(
            400, f"{name}: expected ms from the flow's start, 0 to {MAX_OFFSET_MS:.0f}"
        )
    return value


def _window(call: Call) -> Window | None:
    """?from_ms=&to_ms=: both, or neither (the whole flow)."""
    from_ms, to_ms = _offset(call, "from_ms"), _offset(call, "to_ms")
    if from_ms is None and to_ms is None:
        return None
    if from_ms is None or to_ms is None or from_ms >= to_ms:
        raise HTTPException(400, "zoom: give from_ms and to_ms, from_ms before to_ms")
    return Window(from_ms, to_ms)


def _zoom_range(window: Window | None) -> str:
    if window is None:
        return ""
    return f"{format_duration(window.from_ms)} to {format_duration(window.to_ms)}"


async def trace_search(call: Call) -> Reply | Response:
    """The search box: /trace?q=<id> goes to /trace/<id>."""
    query = call.query.get("q")
    if query is None or not query.strip():
        return Reply({}, page={"query": ""})
    return RedirectResponse(urls.trace(_reference(query)), status_code=303)


async def trace_page(call: Call) -> Reply:
    reference = _reference(call.path["reference"])
    window = _window(call)
    flow = await run_in_threadpool(traces.collect_flow, call.engine, reference)
    mask = await masker_for(call.request)
    flow = dataclasses.replace(flow, events=[mask(row) for row in flow.events])
    if not flow.events and not flow.spans:
        message = f"no record or span found for {reference!r}"
        if call.api:
            raise HTTPException(404, message)
        missing = {"query": reference, "not_found": message}
        return Reply({}, page=missing, status=404, template="trace_search.html")
    timeline = build_timeline(flow, window)
    page = {
        "flow": flow,
        "timeline": timeline,
        "query": reference,
        "show_minimap": timeline.row_count > MINIMAP_ROWS,
        "start_time": format_time(int(timeline.start_ms)),
        "api_url": urls.trace(reference, api=True),
        "full_url": urls.trace(reference),
        "duration": format_duration(timeline.duration_ms),
        "zoom_range": _zoom_range(timeline.window),
    }
    return Reply(timeline_json(flow, timeline), page=page)


ZOOM_BOUND = {"type": "number", "minimum": 0, "maximum": MAX_OFFSET_MS}

ENDPOINTS = [
    Endpoint(trace_search, VIEWER, path="/trace", template="trace_search.html"),
    Endpoint(
        trace_page, VIEWER, path="/trace/{reference:text}", api="/api/trace/{reference:text}",
        template="trace.html",
        summary="Every record and span of one flow, by correlation id, event id or trace id.",
        params=(p("reference", text(MAX_REFERENCE_CHARS),
                  "correlation id, event id or trace id"),
                q("from_ms", ZOOM_BOUND, "zoom: show from this many ms after the flow's start"),
                q("to_ms", ZOOM_BOUND, "zoom: show up to this many ms after the flow's start")),
        response=TraceJson, errors=(400, 404),
    ),
]  # fmt: skip
