"""Retention: delete the oldest events by age and by total index size, in small chunks.

Each chunk is its own short transaction followed by a pause, so the tap's batch writes
(SQLite has one writer at a time) are never held up for long. Positions are never
touched: a deleted record is not consumed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, text

from collectors.index.models import events_table as events

log = logging.getLogger("eventscope.retention")


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_s: float | None = 7 * 86_400.0
    max_bytes: int | None = None
    chunk_rows: int = 5_000
    pause_s: float = 0.05
    interval_s: float = 60.0


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


def run_once(engine: Engine, policy: RetentionPolicy, now_s: float | None = None) -> int:
    """Apply the policy until it holds; return the number of events deleted."""
    now_s = time.time() if now_s is None else now_s
    deleted = 0
    if policy.max_age_s is not None:
        cutoff_ms = int((now_s - policy.max_age_s) * 1000)
        while True:
            count = delete_older_than(engine, cutoff_ms, policy.chunk_rows)
            deleted += count
            if count < policy.chunk_rows:
                break
            time.sleep(policy.pause_s)
    if policy.max_bytes is not None:
        while index_size_bytes(engine) > policy.max_bytes:
            count = delete_oldest(engine, policy.chunk_rows)
            deleted += count
            if count == 0:
                break
            time.sleep(policy.pause_s)
    return deleted


class RetentionService:
    """Background service applying the policy every interval."""

    def __init__(self, engine: Engine, policy: RetentionPolicy) -> None:
        self.name = "retention"
        self.engine = engine
        self.policy = policy
        self.last_deleted = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                self.last_deleted = await asyncio.to_thread(run_once, self.engine, self.policy)
                self.last_error = None
                if self.last_deleted:
                    log.info("retention deleted %d events", self.last_deleted)
            except Exception as exc:  # keep going: the next round may succeed
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("retention failed: %s", self.last_error)
            await asyncio.sleep(self.policy.interval_s)
