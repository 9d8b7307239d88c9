"""The action runner: a background service that runs replay and redrive jobs to the end,
exactly once per record, across crashes.

Why not Kafka transactions: aborted transactional records stay in the log and consumers in
`read_uncommitted` mode (Kafka's default) still see them, so a crash would leave visible
duplicates for many consumers. Instead every record carries provenance headers (job id and
source coordinates) and the index keeps per-record state:

1. Before the first record goes to a target topic, the end offset of each of its partitions
   is stored on the job (`target_starts`).
2. Each chunk of items is marked `inflight` (committed) before it is sent with the
   idempotent producer (`acks=all`, so retries within a session do not duplicate); when
   every send is acknowledged the items become `sent` with their target offsets.
3. A job whose runner died (its lease ran out: a few seconds, renewed by a heartbeat while
   the job runs; see lease.py for why nothing the dead runner sent can arrive later) is
   resumed by any runner: it reads the target partitions from `target_starts` to their
   end, marks the in-flight items whose provenance it finds as `sent` (with the offset
   found) and puts the others back to `pending`. Then it carries on.

Records are read from Kafka at their source offsets; the index copy is used only when Kafka
no longer has the record and the copy is complete (value and headers not truncated).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Engine, and_, bindparam, or_, select, update
from starlette.concurrency import run_in_threadpool

from collectors.config import ClusterConfig
from collectors.conventions import Conventions
from collectors.index.action_models import items_table, jobs_table
from collectors.services import PeriodicService
from console.actions.lease import JobLease, LeaseLost, heartbeat
from console.actions.producer import idempotent_producer
from console.actions.provenance import Provenance, error_header_names, outgoing_headers
from console.actions.rate import RateLimiter
from console.actions.source import (
    Coordinates,
    SourceRecord,
    index_copies,
    partition_ends,
    provenance_since,
    read_at,
    record_reader,
)
from console.stores import jobs as job_store

log = logging.getLogger("eventscope.actions")

CHUNK = 5_000
LEASE_S = 5.0
POLL_S = 0.5
MAX_BACKOFF_S = 60.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class ActionRunner(PeriodicService):
    """Background service: runs the queued replay and redrive jobs, one at a time."""

    name = "action-runner"

    def __init__(
        self,
        engine: Engine,
        clusters: Sequence[ClusterConfig],
        conventions: Conventions | None = None,
        *,
        chunk: int = CHUNK,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.clusters = {cluster.name: cluster for cluster in clusters}
        self.error_names = error_header_names(conventions or Conventions())
        self.chunk = chunk
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.retry_s = poll_s
        self.max_backoff_s = MAX_BACKOFF_S

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(Exception):
            await run_in_threadpool(self._release_leases)

    async def step(self) -> float:
        """Run the next job to its end; wait a poll interval when there is none."""
        job = await run_in_threadpool(self.claim_next)
        if job is None:
            return self.poll_s
        await self.run(job)
        return 0.0

    # --- leases -----------------------------------------------------------------------------

    def claim_next(self) -> dict[str, Any] | None:
        """Take the oldest job that is pending, or whose runner's lease ran out."""
        j = jobs_table.c
        now = _now_ms()
        claimable = or_(
            j.status == "pending",
            and_(
                j.status.in_(("running", "cancelling")),
                or_(j.lease_until_ms.is_(None), j.lease_until_ms < now),
            ),
        )
        with self.engine.begin() as connection:
            candidates = connection.execute(
                select(j.id, j.status).where(claimable).order_by(j.id).limit(5)
            ).all()
            for job_id, status in candidates:
                values: dict[str, Any] = {
                    "lease_owner": self.owner,
                    "lease_until_ms": now + int(self.lease_s * 1000),
                    "updated_at_ms": now,
                }
                if status == "pending":
                    values.update(status="running", started_at_ms=now)
                claimed = connection.execute(
                    update(jobs_table)
                    .where(j.id == job_id, j.status == status, claimable)
                    .values(**values)
                )
                if claimed.rowcount == 1:
                    row = connection.execute(select(jobs_table).where(j.id == job_id)).first()
                    assert row is not None
                    verb = "started" if status == "pending" else "resumed"
                    job_store.add_journal(connection, job_id, "info", f"{verb} by {self.owner}")
                    return dict(row._mapping)
        return None

    def _renew(self, job_id: int) -> str | None:
        """Extend the lease; returns the job's status (None if the lease was lost)."""
        j = jobs_table.c
        now = _now_ms()
        with self.engine.begin() as connection:
            result = connection.execute(
                update(jobs_table)
                .where(j.id == job_id, j.lease_owner == self.owner)
                .values(lease_until_ms=now + int(self.lease_s * 1000), updated_at_ms=now)
            )
            if result.rowcount != 1:
                return None
            return connection.execute(select(j.status).where(j.id == job_id)).scalar()

    def _release_leases(self) -> None:
        j = jobs_table.c
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table)
                .where(j.lease_owner == self.owner, j.status.in_(job_store.ACTIVE))
                .values(lease_until_ms=0)
            )

    # --- running a job ----------------------------------------------------------------------

    async def run(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        cluster = self.clusters.get(job["cluster"])
        if cluster is None:
            await run_in_threadpool(
                self._finish, job_id, "failed", f"cluster {job['cluster']!r} is not configured"
            )
            return
        if job["status"] == "cancelling":
            await run_in_threadpool(self._finish, job_id, "cancelled", None)
            return
        options = json.loads(job["options"])
        limiter = RateLimiter(options.get("rate"))
        storing: asyncio.Future[None] | None = None  # the previous chunk's outcomes
        lease = JobLease(
            lambda: run_in_threadpool(self._renew, job_id), self.lease_s, job["status"]
        )
        try:
            async with (
                heartbeat(lease),
                record_reader(cluster) as consumer,
                idempotent_producer(cluster) as producer,
            ):
                await self._recover(job, consumer, producer)
                await self._record_target_starts(job, consumer, producer)
                chunk = await run_in_threadpool(self._next_chunk, job, options)
                while True:
                    if lease.lost:  # its new runner settles what this one took
                        with contextlib.suppress(Exception):
                            await _finished(storing)  # what was sent is recorded as sent
                        log.warning("job %s: lease lost, leaving it to its new runner", job_id)
                        return
                    if lease.status == "cancelling":
                        await _finished(storing)
                        if chunk:  # taken but never sent: pending again
                            await run_in_threadpool(self._release, job_id, chunk)
                        await run_in_threadpool(self._finish, job_id, "cancelled", None)
                        return
                    if chunk is None:
                        await _finished(storing)
                        await run_in_threadpool(self._finish, job_id, "done", None)
                        return
                    # Pipelined: the next chunk is taken (marked in flight, committed) and
                    # the previous one's outcomes are stored while this one is sent.
                    taking = asyncio.ensure_future(
                        run_in_threadpool(self._next_chunk, job, options)
                    )
                    try:
                        outcomes = await self._send_chunk(
                            job, options, chunk, consumer, producer, limiter, lease
                        )
                    except LeaseLost:
                        continue  # what was sent of this chunk is the successor's to find
                    finally:
                        chunk = await taking
                    await _finished(storing)
                    storing = asyncio.ensure_future(
                        run_in_threadpool(self._store_outcomes, job_id, outcomes)
                    )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await _finished(storing)
            message = f"{type(exc).__name__}: {exc}"
            await run_in_threadpool(self._note_error, job_id, message)
            raise

    def _next_chunk(
        self, job: dict[str, Any], options: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """The next pending items (None when there are none left); those already redriven
        (unless forced) become skipped. The rest are marked in flight, committed before
        anything is sent. With a rate, a chunk is about one second of sending."""
        i = items_table.c
        job_id = job["id"]
        now = _now_ms()
        with self.engine.begin() as connection:
            rows = [
                dict(r._mapping)
                for r in connection.execute(
                    select(items_table)
                    .where(i.job_id == job_id, i.state == "pending")
                    .order_by(i.seq)
                    .limit(self._chunk_size(options))
                )
            ]
            if not rows:
                return None
            skipped: list[tuple[int, str]] = []
            if job["kind"] == "redrive" and not options.get("force"):
                sources = [_source(r) for r in rows]
                copies = job_store.sent_copies(connection, job["cluster"], sources)
                skipped = [
                    (r["id"], job_store.describe_copy(copies[_source(r)]))
                    for r in rows
                    if _source(r) in copies
                ]
            if skipped:
                connection.execute(
                    update(items_table)
                    .where(i.id == bindparam("item_id"))
                    .values(state="skipped", note=bindparam("item_note"), done_at_ms=now),
                    [{"item_id": item_id, "item_note": note} for item_id, note in skipped],
                )
                _add_counts(connection, job_id, skipped=len(skipped))
            skipped_ids = {item_id for item_id, _ in skipped}
            rows = [r for r in rows if r["id"] not in skipped_ids]
            if rows:
                connection.execute(
                    update(items_table)
                    .where(i.id.in_([r["id"] for r in rows]))
                    .values(state="inflight")
                )
        return rows

    def _chunk_size(self, options: dict[str, Any]) -> int:
        rate = options.get("rate")
        if not rate:
            return self.chunk
        return max(1, min(self.chunk, int(rate)))  # about a second: cancel acts quickly

    async def _send_chunk(
        self,
        job: dict[str, Any],
        options: dict[str, Any],
        chunk: list[dict[str, Any]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        limiter: RateLimiter,
        lease: JobLease,
    ) -> list[dict[str, Any]]:
        """Send a chunk; return each item's outcome (the caller stores them). Each send
        starts only while the lease is safely held (LeaseLost when it is not)."""
        wanted = [_source(row) for row in chunk]
        records = await read_at(consumer, wanted)
        missing = [coords for coords in wanted if coords not in records]
        if missing:
            copies = await run_in_threadpool(index_copies, self.engine, job["cluster"], missing)
            records.update(copies)
        outcomes: list[dict[str, Any]] = []
        position = 0
        while position < len(chunk):
            size = limiter.batch_size(len(chunk) - position)
            part = chunk[position : position + size]
            position += size
            await limiter.acquire(len(part))
            futures = []
            for row in part:
                record = records.get(_source(row))
                if record is None:
                    outcomes.append(
                        _failed(row, "no longer in Kafka, and no complete copy in the index")
                    )
                    continue
                await lease.ready_to_send()
                future = await producer.send(
                    row["target_topic"],
                    record.value,
                    key=record.key,
                    headers=self._headers(job, options, row, record),
                )
                futures.append((row, record, future))
            for row, record, future in futures:
                try:
                    metadata = await future
                except Exception as exc:
                    outcomes.append(_failed(row, f"{type(exc).__name__}: {exc}"))
                    continue
                note = "sent from the index copy" if record.from_index else None
                outcomes.append({
                    "item_id": row["id"], "item_state": "sent",
                    "item_partition": metadata.partition, "item_offset": metadata.offset,
                    "item_note": note,
                })  # fmt: skip
        return outcomes

    def _headers(
        self,
        job: dict[str, Any],
        options: dict[str, Any],
        row: dict[str, Any],
        record: SourceRecord,
    ) -> list[tuple[str, bytes]]:
        provenance = Provenance(
            job["action_id"], job["cluster"], row["source_topic"], row["source_partition"],
            row["source_offset"],
        )  # fmt: skip
        headers = outgoing_headers(
            record.headers,
            provenance,
            redrive=job["kind"] == "redrive",
            drop_error_headers=job["kind"] == "redrive" and not options.get("keep_error_headers"),
            error_names=self.error_names,
        )
        return [(name, value if value is not None else b"") for name, value in headers]

    def _release(self, job_id: int, chunk: list[dict[str, Any]]) -> None:
        """Items taken (in flight) but never sent go back to pending."""
        i = items_table.c
        with self.engine.begin() as connection:
            connection.execute(
                update(items_table)
                .where(i.job_id == job_id, i.id.in_([row["id"] for row in chunk]),
                       i.state == "inflight")
                .values(state="pending")
            )  # fmt: skip

    def _store_outcomes(self, job_id: int, outcomes: list[dict[str, Any]]) -> None:
        if not outcomes:
            return
        i = items_table.c
        now = _now_ms()
        for outcome in outcomes:
            outcome.setdefault("item_partition", None)
            outcome.setdefault("item_offset", None)
            outcome["item_done"] = now
        with self.engine.begin() as connection:
            connection.execute(
                update(items_table)
                .where(i.id == bindparam("item_id"))
                .values(
                    state=bindparam("item_state"),
                    target_partition=bindparam("item_partition"),
                    target_offset=bindparam("item_offset"),
                    note=bindparam("item_note"),
                    done_at_ms=bindparam("item_done"),
                ),
                outcomes,
            )
            sent = sum(1 for o in outcomes if o["item_state"] == "sent")
            _add_counts(connection, job_id, sent=sent, failed=len(outcomes) - sent)

    # --- targets and recovery ---------------------------------------------------------------

    async def _record_target_starts(
        self, job: dict[str, Any], consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> None:
        """Store where each target partition ended before this job first wrote to it."""
        i = items_table.c

        def targets() -> list[str]:
            with self.engine.connect() as connection:
                query = (
                    select(i.target_topic)
                    .where(i.job_id == job["id"], i.state == "pending", i.target_topic.is_not(None))
                    .distinct()
                )
                return [row[0] for row in connection.execute(query)]

        starts: dict[str, dict[str, int]] = json.loads(job["target_starts"])
        added = False
        for topic in await run_in_threadpool(targets):
            if topic in starts:
                continue
            try:
                starts[topic] = await partition_ends(producer, consumer, topic)
            except Exception as exc:  # the sends to it will fail and say why
                log.warning("job %s: no offsets for target %s: %s", job["id"], topic, exc)
                starts[topic] = {}
            added = True
        if added:
            job["target_starts"] = json.dumps(starts)
            await run_in_threadpool(self._save_starts, job["id"], job["target_starts"])

    def _save_starts(self, job_id: int, starts: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table).where(jobs_table.c.id == job_id).values(target_starts=starts)
            )

    async def _recover(
        self, job: dict[str, Any], consumer: AIOKafkaConsumer, producer: AIOKafkaProducer
    ) -> None:
        """Settle in-flight items left by a runner that died: sent if Kafka has them."""
        i = items_table.c

        def inflight() -> list[dict[str, Any]]:
            with self.engine.connect() as connection:
                query = select(i.id, i.source_topic, i.source_partition, i.source_offset).where(
                    i.job_id == job["id"], i.state == "inflight"
                )
                return [dict(r._mapping) for r in connection.execute(query)]

        rows = await run_in_threadpool(inflight)
        if not rows:
            return
        starts: dict[str, dict[str, int]] = json.loads(job["target_starts"])
        # A topic that did not exist at the start: every partition starts at 0.
        for topic, partitions in list(starts.items()):
            if not partitions:
                ends = await partition_ends(producer, consumer, topic)
                starts[topic] = {p: 0 for p in ends}
        found = await provenance_since(consumer, job["action_id"], starts)
        outcomes = []
        for row in rows:
            target = found.get(_source(row))
            if target is not None:
                outcomes.append({
                    "item_id": row["id"], "item_state": "sent", "item_partition": target[1],
                    "item_offset": target[2], "item_note": "confirmed after a restart",
                })  # fmt: skip
        confirmed = {o["item_id"] for o in outcomes}
        await run_in_threadpool(self._store_outcomes, job["id"], outcomes)
        requeue = [row["id"] for row in rows if row["id"] not in confirmed]

        def back_to_pending() -> None:
            with self.engine.begin() as connection:
                if requeue:
                    connection.execute(
                        update(items_table).where(i.id.in_(requeue)).values(state="pending")
                    )
                job_store.add_journal(
                    connection, job["id"], "warning",
                    f"recovered after a restart: {len(confirmed)} in-flight records were "
                    f"already in Kafka, {len(requeue)} will be sent",
                )  # fmt: skip

        await run_in_threadpool(back_to_pending)

    # --- finishing ----------------------------------------------------------------------------

    def _finish(self, job_id: int, status: str, error: str | None) -> None:
        j = jobs_table.c
        now = _now_ms()
        with self.engine.begin() as connection:
            values: dict[str, Any] = {
                "status": status, "finished_at_ms": now, "updated_at_ms": now,
                "lease_owner": None, "lease_until_ms": None,
            }  # fmt: skip
            if error:
                values["error"] = error
            connection.execute(update(jobs_table).where(j.id == job_id).values(**values))
            row = connection.execute(select(jobs_table).where(j.id == job_id)).first()
            assert row is not None
            counts = f"sent {row.sent}, skipped {row.skipped}, failed {row.failed} of {row.total}"
            level = "error" if status == "failed" else "info"
            job_store.add_journal(
                connection, job_id, level, f"{status}: {counts}" + (f" ({error})" if error else "")
            )

    def _note_error(self, job_id: int, message: str) -> None:
        j = jobs_table.c
        with self.engine.begin() as connection:
            connection.execute(
                update(jobs_table)
                .where(j.id == job_id)
                .values(error=message[:2000], lease_until_ms=0, updated_at_ms=_now_ms())
            )
            job_store.add_journal(connection, job_id, "error", f"{message[:1900]}; will retry")


async def _finished(task: asyncio.Future[None] | None) -> None:
    """Wait for a background store, if one is running (its error is raised here)."""
    if task is not None:
        await task


def _source(row: dict[str, Any]) -> Coordinates:
    return row["source_topic"], row["source_partition"], row["source_offset"]


def _failed(row: dict[str, Any], note: str) -> dict[str, Any]:
    return {"item_id": row["id"], "item_state": "failed", "item_note": note[:1000]}


def _add_counts(
    connection: Any, job_id: int, *, sent: int = 0, skipped: int = 0, failed: int = 0
) -> None:
    c = jobs_table.c
    connection.execute(
        update(jobs_table)
        .where(c.id == job_id)
        .values(sent=c.sent + sent, skipped=c.skipped + skipped, failed=c.failed + failed)
    )
