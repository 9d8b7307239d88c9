"""Event health (`/health/events`, JSON at `/api/health/events`): duplicate events (one
event id indexed more than once on a topic, retry and dead-letter copies told apart) and
ordering breaks (a key on several partitions of a topic; a key's configured sequence
going backwards or skipping within a partition), over a window, on demand.

The queries are in console/stores/event_health.py, the pure checks in
console/event_health.py, the per-topic sequence fields in `[event_health]`.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from console.alerts.rules import RuleError, format_duration, parse_duration
from console.auth.roles import VIEWER
from console.event_health import Sequence
from console.payload_view import display_key
from console.stores import event_health as store
from console.stores import events as event_store
from console.stores.masking import masker_for
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import q, text

WINDOWS = ("15m", "1h", "6h", "24h", "7d")
DEFAULT_WINDOW = "1h"
MIN_WINDOW_S = 60.0
MAX_WINDOW_S = 7 * 86_400.0
MAX_TOPIC_CHARS = 249  # Kafka's limit
MAX_SHOWN = 200  # characters of an event id, a producer or a sequence shown


class CopyJson(TypedDict):
    partition: int
    offset: int
    timestamp_ms: int
    producer: str | None
    kind: str  # plain, retry or dead-letter
    link: str


class DuplicateJson(TypedDict):
    cluster: str
    topic: str
    event_id: str
    copies: list[CopyJson]
    extra_copies: int  # plain copies beyond the first
    seconds_between: float  # from the first plain copy to the last
    search: str  # the events page listing every record of this event id


class DuplicateCountJson(TypedDict):
    cluster: str
    topic: str
    producer: str | None
    events: int
    extra_copies: int
    per_hour: float


class DuplicatesJson(TypedDict):
    total_extra_copies: int
    counts: list[DuplicateCountJson]
    duplicates: list[DuplicateJson]
    retry_copies: int  # event ids copied only by a retry or dead-lettering: not duplicates
    retries: list[DuplicateJson]
    rows_read: int
    capped: bool


class KeyPartitionJson(TypedDict):
    partition: int
    first_offset: int
    first_timestamp_ms: int
    records: int
    link: str


class SplitKeyJson(TypedDict):
    cluster: str
    topic: str
    key: str
    partitions: list[KeyPartitionJson]
    search: str


class SequenceBreakJson(TypedDict):
    kind: str  # backwards or gap
    partition: int
    key: str
    before_offset: int
    before: str
    offset: int
    after: str
    timestamp_ms: int
    before_link: str
    link: str


class SequenceTopicJson(TypedDict):
    cluster: str
    topic: str
    field: str
    gaps: bool
    breaks: list[SequenceBreakJson]
    rows_read: int
    capped: bool
    without_sequence: int


class OrderingJson(TypedDict):
    total: int  # keys on several partitions + sequence breaks
    split_keys_total: int
    split_keys: list[SplitKeyJson]
    split_rows_read: int
    split_capped: bool
    sequences: list[SequenceTopicJson]


class ProcessingSpanJson(TypedDict):
    service: str | None
    time: str
    failed: bool
    link: str  # its trace


class ReprocessedJson(TypedDict):
    group: str
    topic: str
    partition: int
    offset: int
    operation: str
    times: int
    spans: list[ProcessingSpanJson]
    record: str  # the events page at these coordinates


class ReprocessingJson(TypedDict):
    total: int
    records: list[ReprocessedJson]
    rows_read: int
    capped: bool


class EventHealthJson(TypedDict):
    cluster: str | None
    topic: str | None
    window: str
    window_s: float
    since_ms: int
    max_rows: int
    duplicates: DuplicatesJson
    ordering: OrderingJson
    reprocessing: ReprocessingJson  # records one group processed more than once (spans)


def _window(raw: str | None) -> float:
    try:
        seconds = parse_duration(raw or DEFAULT_WINDOW, "window")
    except RuleError as exc:
        raise HTTPException(400, str(exc)) from None
    if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
        raise HTTPException(400, "window: must be between 1m and 7d")
    return seconds


def _short(value: Any) -> str:
    shown = str(value)
    return shown if len(shown) <= MAX_SHOWN else shown[:MAX_SHOWN] + "…"


def _producer(value: str | None) -> str | None:
    return None if value is None else _short(value)


def _copy_group(group: store.CopyGroup, mask: Any) -> DuplicateJson:
    shown = mask({"cluster": group.cluster, "topic": group.topic, "event_id": group.event_id})
    plain = group.plain or group.copies
    return DuplicateJson(
        cluster=group.cluster,
        topic=group.topic,
        event_id=_short(shown.get("event_id") or ""),
        copies=[
            CopyJson(
                partition=c.partition,
                offset=c.offset,
                timestamp_ms=c.timestamp_ms,
                producer=_producer(c.source),
                kind=c.kind,
                link=urls.event(group.cluster, group.topic, c.partition, c.offset),
            )
            for c in group.copies
        ],
        extra_copies=max(len(group.plain) - 1, 0),
        seconds_between=(plain[-1].timestamp_ms - plain[0].timestamp_ms) / 1000,
        search=urls.events(cluster=group.cluster, topic=group.topic, event_id=group.event_id),
    )


def _key_text(cluster: str, topic: str, key: bytes, decoded: str | None, mask: Any) -> str:
    shown = mask({"cluster": cluster, "topic": topic, "key": key, "decoded_key": decoded})
    return display_key(shown.get("key"), shown.get("decoded_key"))


def _sequence_text(value: Sequence) -> str:
    return _short(value)


def health_json(found: store.EventHealth, scope: store.Scope, window_s: float,
                mask: Any) -> tuple[DuplicatesJson, OrderingJson]:  # fmt: skip
    dup = found.duplicates
    hours = window_s / 3600
    duplicates = DuplicatesJson(
        total_extra_copies=sum(c.extra_copies for c in dup.counts),
        counts=[
            DuplicateCountJson(
                cluster=c.cluster,
                topic=c.topic,
                producer=_producer(c.producer),
                events=c.events,
                extra_copies=c.extra_copies,
                per_hour=round(c.extra_copies / hours, 2),
            )
            for c in dup.counts
        ],
        duplicates=[_copy_group(g, mask) for g in dup.groups],
        retry_copies=dup.retry_copies,
        retries=[_copy_group(g, mask) for g in dup.retry_groups],
        rows_read=dup.rows_read,
        capped=dup.capped,
    )
    order = found.ordering
    split = [
        SplitKeyJson(
            cluster=k.cluster,
            topic=k.topic,
            key=_key_text(k.cluster, k.topic, k.key, k.decoded_key, mask),
            partitions=[
                KeyPartitionJson(
                    partition=p.partition,
                    first_offset=p.first_offset,
                    first_timestamp_ms=p.first_timestamp_ms,
                    records=p.records,
                    link=urls.event(k.cluster, k.topic, p.partition, p.first_offset),
                )
                for p in k.partitions
            ],
            search=urls.events(cluster=k.cluster, topic=k.topic, key=_search_key(k.key)),
        )
        for k in order.split.keys
    ]
    sequences = [
        SequenceTopicJson(
            cluster=t.cluster,
            topic=t.topic,
            field=t.rule.field.spelled,
            gaps=t.rule.gaps,
            breaks=[
                SequenceBreakJson(
                    kind=b.kind,
                    partition=b.partition,
                    key=_key_text(t.cluster, t.topic, b.key, None, mask),
                    before_offset=b.before_offset,
                    before=_sequence_text(b.before),
                    offset=b.offset,
                    after=_sequence_text(b.after),
                    timestamp_ms=b.timestamp_ms,
                    before_link=urls.event(t.cluster, t.topic, b.partition, b.before_offset),
                    link=urls.event(t.cluster, t.topic, b.partition, b.offset),
                )
                for b in t.breaks[: store.MAX_FINDINGS]
            ],
            rows_read=t.rows_read,
            capped=t.capped,
            without_sequence=t.without_sequence,
        )
        for t in order.sequences
    ]
    ordering = OrderingJson(
        total=order.breaks,
        split_keys_total=order.split.total,
        split_keys=split,
        split_rows_read=order.split.rows_read,
        split_capped=order.split.capped,
        sequences=sequences,
    )
    return duplicates, ordering


def _search_key(key: bytes) -> str | None:
    """The events page's key filter takes text: a key that is not UTF-8 gets no link."""
    try:
        return key.decode("utf-8")[:1000]
    except UnicodeDecodeError:
        return None


def reprocessing_json(found: store.Reprocessing, cluster: str | None) -> ReprocessingJson:
    return ReprocessingJson(
        total=found.total, rows_read=found.rows_read, capped=found.capped,
        records=[
            ReprocessedJson(
                group=_short(r.group), topic=r.topic, partition=r.partition, offset=r.offset,
                operation=r.operation, times=len(r.spans),
                spans=[ProcessingSpanJson(
                    service=_producer(x.service), failed=x.failed,
                    time=event_store.format_time(x.start_ns // 1_000_000),
                    link=urls.trace(x.trace_id)) for x in r.spans],
                record=urls.events(cluster=cluster, topic=r.topic, partition=r.partition,
                                   offset_from=r.offset, offset_to=r.offset),
            )
            for r in found.records
        ],
    )  # fmt: skip


async def event_health_page(call: Call) -> Reply:
    cluster = (call.query.get("cluster") or "").strip() or None
    topic = (call.query.get("topic") or "").strip() or None
    names = [c.name for c in call.settings.clusters]
    if cluster is not None and cluster not in names:
        raise HTTPException(404, f"cluster: no cluster {_short(cluster)!r} is configured")
    if topic is not None and len(topic) > MAX_TOPIC_CHARS:
        raise HTTPException(400, f"topic: longer than {MAX_TOPIC_CHARS} characters")
    window_s = _window(call.query.get("window"))
    settings = call.state.areas.event_health
    since_ms = int((time.time() - window_s) * 1000)
    scope = store.Scope(since_ms, settings.max_rows, cluster, topic)
    found = await run_in_threadpool(store.event_health, call.engine, scope, settings.sequences)
    mask = await masker_for(call.request)
    duplicates, ordering = health_json(found, scope, window_s, mask)
    window = format_duration(window_s)
    data = EventHealthJson(
        cluster=cluster, topic=topic, window=window, window_s=window_s, since_ms=since_ms,
        max_rows=settings.max_rows, duplicates=duplicates, ordering=ordering,
        reprocessing=reprocessing_json(found.reprocessing, cluster),
    )  # fmt: skip
    page = {
        "clusters": names,
        "windows": WINDOWS if window in WINDOWS else (*WINDOWS, window),
        "sequence_rules": [(r.topic, r.field.spelled, r.gaps) for r in settings.sequences],
        "api_link": urls.event_health(api=True, cluster=cluster, topic=topic, window=window),
    }
    return Reply(data, page=page)


ENDPOINTS = [
    Endpoint(
        event_health_page,
        VIEWER,
        path="/health/events",
        api="/api/health/events",
        template="event_health.html",
        summary="Event health: duplicate events and ordering breaks over a window.",
        description="Duplicates: an event id indexed more than once on a topic (retry and "
        "dead-letter copies are listed apart, not counted). Ordering: keys on several "
        "partitions of a topic, and keys whose configured sequence field "
        "(`[event_health]`) goes backwards within a partition. Each check reads at most "
        "`event_health.max_rows` of the newest records of the window.",
        params=(
            q("cluster", text(200), "only this cluster"),
            q("topic", text(MAX_TOPIC_CHARS), "only this topic"),
            q("window", text(20), "how far back: 15m, 1h (default), 6h, 24h, 7d, any 1m to 7d"),
        ),
        response=EventHealthJson,
        errors=(400, 404),
    ),
]
