"""Retention: delete the oldest events by age and by total index size, in small chunks.

The same maximum age applies to spans (by start time, with their span links) and to sagas
that finished (completed, failed, compensated, compensation incomplete) longer ago than
that. Running, stuck and compensating sagas are problems to look into: they are kept longer,
until their last event is older than `unfinished_saga_max_age_s` (30 days by default;
without that bound every saga that never finishes would stay forever). Each chunk is its
own short transaction followed by a pause, so the tap's batch writes and the OTLP receiver
(SQLite has one writer at a time) are never held up for long. On PostgreSQL events and spans are
partitioned by day: a round first drops the days wholly past the cutoff and makes the
coming days' partitions (collectors/index/partitions.py); the chunks delete the rest.
Positions are never touched: a deleted record is not consumed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, or_, select, text

from collectors.index import partitions
from collectors.index.engine import one_of
from collectors.index.models import events_table as events
from collectors.index.saga_models import sagas_table as sagas
from collectors.index.trace_models import span_links_table as span_links
from collectors.index.trace_models import spans_table as spans
from collectors.saga_rules import SagaStatus
from collectors.services import PeriodicService

log = logging.getLogger("eventscope.retention")


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_s: float | None = 7 * 86_400.0
    max_bytes: int | None = None
    unfinished_saga_max_age_s: float | None = 30 * 86_400.0
    chunk_rows: int = 5_000
    pause_s: float = 0.05
    interval_s: float = 60.0


FINISHED_SAGA_STATUSES = ("completed", "failed", "compensated", "compensation_incomplete")
UNFINISHED_SAGA_STATUSES = tuple(
    str(status) for status in SagaStatus if str(status) not in FINISHED_SAGA_STATUSES
)
LINK_BATCH = 400  # span contexts per span_links delete: well under bound-parameter limits

ROW_OVERHEAD_BYTES = 160  # identity columns and index entries of a typical row

PG_ESTIMATE = text(
    """
    SELECT (SELECT count(*) FROM events),
           (SELECT avg(octet_length(value) + octet_length(headers)
                       + coalesce(octet_length(key), 0))
              FROM (SELECT value, headers, key FROM events ORDER BY id DESC LIMIT 1000) s)
    """
)


def index_size_bytes(engine: Engine) -> int:
    """Bytes the events take.

    SQLite: the database pages in use (exact). PostgreSQL keeps freed space inside its files
    for reuse, so the file size would never drop below a cap; there the size is estimated
    as rows x the average size of the newest rows (an index-only count: about a second at
    ten million rows, once per retention round).
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows, average = connection.execute(PG_ESTIMATE).one()
            return int((rows or 0) * (float(average or 0) + ROW_OVERHEAD_BYTES))
        page_size = connection.execute(text("PRAGMA page_size")).scalar_one()
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()
        free = connection.execute(text("PRAGMA freelist_count")).scalar_one()
        return int((pages - free) * page_size)


def delete_older_than(engine: Engine, cutoff_ms: int, chunk_rows: int) -> int:
    """Delete one chunk of events older than cutoff_ms (oldest first); return the count."""
    oldest = (
        select(events.c.id)
        .where(events.c.timestamp_ms < cutoff_ms)
        .order_by(events.c.timestamp_ms)
        .limit(chunk_rows)
    )
    with engine.begin() as connection:
        return connection.execute(delete(events).where(events.c.id.in_(oldest))).rowcount or 0


def delete_oldest(engine: Engine, chunk_rows: int) -> int:
    """Delete one chunk of the first-indexed events; return the count."""
    oldest = select(events.c.id).order_by(events.c.id).limit(chunk_rows)
    with engine.begin() as connection:
        return connection.execute(delete(events).where(events.c.id.in_(oldest))).rowcount or 0


def delete_spans_older_than(engine: Engine, cutoff_ms: int, chunk_rows: int) -> int:
    """Delete one chunk of spans that started before cutoff_ms, with their span links."""
    oldest = (
        select(spans.c.id, spans.c.trace_id, spans.c.span_id)
        .where(spans.c.start_ns < cutoff_ms * 1_000_000)
        .order_by(spans.c.start_ns)
        .limit(chunk_rows)
    )
    with engine.begin() as connection:
        rows = connection.execute(oldest).all()
        for first in range(0, len(rows), LINK_BATCH):
            by_trace: dict[str, list[str]] = {}
            for _, trace_id, span_id in rows[first : first + LINK_BATCH]:
                by_trace.setdefault(trace_id, []).append(span_id)
            owned = or_(*(and_(span_links.c.trace_id == trace_id, span_links.c.span_id.in_(ids))
                          for trace_id, ids in by_trace.items()))  # fmt: skip
            connection.execute(delete(span_links).where(owned))
            ids = [row[0] for row in rows[first : first + LINK_BATCH]]
            connection.execute(delete(spans).where(spans.c.id.in_(ids)))
    return len(rows)


def delete_sagas_before(
    engine: Engine, cutoff_ms: int, chunk_rows: int, statuses: tuple[str, ...]
) -> int:
    """Delete one chunk of sagas in one of `statuses` whose last event is older than
    cutoff_ms."""
    c = sagas.c
    oldest = (
        select(c.cluster, c.saga_id)
        .where(c.status.in_(statuses), c.last_ms < cutoff_ms)
        .limit(chunk_rows)
    )
    with engine.begin() as connection:
        keys = connection.execute(oldest).all()
        dialect = connection.dialect.name
        for first in range(0, len(keys), LINK_BATCH):
            by_cluster: dict[str, list[str]] = {}
            for cluster, saga_id in keys[first : first + LINK_BATCH]:
                by_cluster.setdefault(cluster, []).append(saga_id)
            chosen = or_(*(and_(c.cluster == cluster, one_of(c.saga_id, ids, dialect))
                           for cluster, ids in by_cluster.items()))  # fmt: skip
            connection.execute(delete(sagas).where(chosen))
    return len(keys)


def _in_chunks(delete_chunk: Callable[[], int], policy: RetentionPolicy) -> int:
    """Call a chunk deleter until a chunk comes back short, pausing between chunks."""
    deleted = 0
    while True:
        count = delete_chunk()
        deleted += count
        if count < policy.chunk_rows:
            return deleted
        time.sleep(policy.pause_s)


@dataclass
class RetentionRound:
    events: int = 0  # with those of the partitions dropped (PostgreSQL's estimate)
    partitions: int = 0  # dropped, of events and spans
    spans: int = 0  # likewise
    sagas: int = 0


def run_round(
    engine: Engine, policy: RetentionPolicy, now_s: float | None = None
) -> RetentionRound:
    """Apply the policy to events, spans and sagas until it holds; say what was deleted."""
    now_s = time.time() if now_s is None else now_s
    result = RetentionRound()
    chunk = policy.chunk_rows
    cutoff_ms = None if policy.max_age_s is None else int((now_s - policy.max_age_s) * 1000)
    if engine.dialect.name == "postgresql":  # whole days first (collectors/index/partitions.py)
        days = partitions.maintain(engine, cutoff_ms, int(now_s * 1000))
        result.partitions, result.events, result.spans = days.partitions, days.events, days.spans
    if cutoff_ms is not None:
        result.events += _in_chunks(lambda: delete_older_than(engine, cutoff_ms, chunk), policy)
        result.spans += _in_chunks(
            lambda: delete_spans_older_than(engine, cutoff_ms, chunk), policy
        )
        result.sagas = _in_chunks(
            lambda: delete_sagas_before(engine, cutoff_ms, chunk, FINISHED_SAGA_STATUSES), policy
        )
    if policy.unfinished_saga_max_age_s is not None:
        open_cutoff_ms = int((now_s - policy.unfinished_saga_max_age_s) * 1000)
        result.sagas += _in_chunks(
            lambda: delete_sagas_before(engine, open_cutoff_ms, chunk, UNFINISHED_SAGA_STATUSES),
            policy,
        )
    if policy.max_bytes is not None:
        result.events += _delete_to_size(engine, policy)
    return result


def run_once(engine: Engine, policy: RetentionPolicy, now_s: float | None = None) -> int:
    """Apply the policy until it holds; return the number of events deleted."""
    return run_round(engine, policy, now_s).events


def _delete_to_size(engine: Engine, policy: RetentionPolicy) -> int:
    deleted = 0
    while policy.max_bytes is not None and index_size_bytes(engine) > policy.max_bytes:
        count = delete_oldest(engine, policy.chunk_rows)
        deleted += count
        if count == 0:
            break
        time.sleep(policy.pause_s)
    return deleted


class RetentionService(PeriodicService):
    """Background service applying the policy every interval."""

    name = "retention"

    def __init__(self, engine: Engine, policy: RetentionPolicy) -> None:
        super().__init__()
        self.engine = engine
        self.policy = policy
        self.retry_s = policy.interval_s
        self.last_deleted = 0
        self.last_round = RetentionRound()

    async def step(self) -> float:
        result = await asyncio.to_thread(run_round, self.engine, self.policy)
        self.last_deleted = result.events
        self.last_round = result
        if result.events or result.spans or result.sagas:
            log.info("retention deleted %d events, %d spans, %d sagas",
                     result.events, result.spans, result.sagas)  # fmt: skip
        return self.policy.interval_s
