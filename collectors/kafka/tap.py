"""The tap: consume every record of every selected topic and write it to the index.

One aiokafka consumer per cluster, in eventscope's own consumer group (so several
collector processes split the partitions and the applications' groups are never touched).
Offsets are not committed to Kafka: the positions live in the index, written in the same
transaction as the rows (see collectors/index/writer.py), and the consumer seeks to them
whenever it is assigned a partition. That makes ingest exactly-once even after kill -9.

Batches go into the writer's open transaction, which commits when no further batch is
waiting or when it is large enough (group commit). A failed write loses every batch added
since the last commit, so the tap then reads again from the stored positions: batches it
had read before the failure are dropped unwritten (they carry an older `epoch`), and no
later batch can commit positions past the lost ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import pickle
import re
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from sqlalchemy import Engine

from collectors.config import ClusterConfig, CollectorConfig
from collectors.conventions import Conventions, NormalizedEvent, RawRecord, normalize
from collectors.index.event_row import NORMALIZED_COLUMNS, EventTuple
from collectors.index.identity import identity_hashes, search_key, text_hash
from collectors.index.writer import BatchHook, BatchWriter, PositionKey, read_positions
from collectors.index.writer_process import WriterProcess
from collectors.kafka.admin import client_options, explain
from collectors.kafka.backlog import Backlog
from collectors.schemas.decoding import RecordDecoder
from collectors.schemas.usage import SchemaUsageHook
from collectors.services import Health, ServiceStatus, cancel_and_wait

log = logging.getLogger("eventscope.tap")

# Topics no one wants indexed: Kafka's own, schema registries' (Confluent's, Apicurio's
# KafkaSQL journal), Connect's, and ours.
INTERNAL_TOPIC_PATTERNS = (
    r"__.*",
    r"_schemas",
    r"kafkasql-journal",
    r"_confluent.*",
    r"connect-(configs|offsets|status)",
    r"eventscope-internal.*",
)
METADATA_REFRESH_MS = 3_000  # new topics are picked up within a few seconds
WRITE_RETRY_MAX_S = 5.0  # a failing index is tried again at least this often, so recovery is quick
REWIND_RETRY_S = 1.0
BACKLOG_SAMPLE_S = 5.0  # how often the partitions' end offsets are read (see backlog.py)
MAX_PARTITIONS_SHOWN = 2_000  # in /readyz, where the tap's partitions are listed


def subscription_pattern(include: Iterable[str], exclude: Iterable[str]) -> re.Pattern[str]:
    """One regex for aiokafka's pattern subscription: include minus exclude minus internal."""
    excluded = "|".join(f"(?:{p})" for p in (*INTERNAL_TOPIC_PATTERNS, *exclude))
    included = "|".join(f"(?:{p})" for p in include) or "(?!)"
    return re.compile(f"^(?!(?:{excluded})$)(?:{included})$")


_NORMALIZED = operator.attrgetter(*NORMALIZED_COLUMNS)


def to_row(cluster: str, event: NormalizedEvent, now_ms: int) -> EventTuple:
    """The index row of an event: a tuple in EVENT_COLUMNS order, taken from the event by
    column name (collectors/index/event_row.py)."""
    return (
        cluster,
        now_ms,
        *_NORMALIZED(event),
        text_hash(search_key(event.key, event.decoded_key)),
        *identity_hashes(
            event.event_id, event.correlation_id, event.causation_id, event.trace_id,
            event.saga_id,
        ),
    )  # fmt: skip


def normalize_batch(
    cluster: str,
    records: Sequence[Any],
    conventions: Conventions,
    now_ms: int,
    decoder: RecordDecoder | None = None,
) -> tuple[list[EventTuple], dict[PositionKey, int]]:
    """Rows for the index and the next offset per partition after them."""
    rows: list[EventTuple] = []
    next_offsets: dict[PositionKey, int] = {}
    for record in records:
        raw = RawRecord(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            record.headers or (),
        )
        rows.append(to_row(cluster, normalize(raw, conventions, decoder), now_ms))
        position = (record.topic, record.partition)
        next_offsets[position] = max(next_offsets.get(position, 0), record.offset + 1)
    return rows, next_offsets


@dataclass
class TapStats:
    records_indexed: int = 0
    batches: int = 0
    last_batch_at: float | None = None
    last_record_timestamp_ms: int | None = None
    write_errors: int = 0
    assigned: list[str] = field(default_factory=list)


class _SeekToStoredPositions(ConsumerRebalanceListener):
    def __init__(self, tap: Tap) -> None:
        self.tap = tap

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Let the batches in hand commit before another collector takes the partitions.
        await self.tap.drain()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.tap.seek_to_stored_positions(list(assigned))


@dataclass
class _Batch:
    rows: list[EventTuple]
    next_offsets: dict[PositionKey, int]
    newest_timestamp_ms: int
    now_ms: int
    epoch: int  # the tap's epoch when the records were read


class Tap:
    """A background service (start/stop) that indexes one cluster."""

    def __init__(
        self,
        cluster: ClusterConfig,
        engine: Engine,
        conventions: Conventions,
        settings: CollectorConfig,
        hooks: Sequence[BatchHook] = (),
        decoder: RecordDecoder | None = None,
    ) -> None:
        self.name = f"tap[{cluster.name}]"
        self.hooks = [*hooks, SchemaUsageHook()]
        # The cluster's schemas: registry look-ups happen in the normalizer thread.
        self.decoder = decoder or RecordDecoder.for_cluster(cluster)
        self.cluster = cluster
        self.engine = engine
        self.conventions = conventions
        self.settings = settings
        self.stats = TapStats()
        self.health = Health()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        # Two batches in hand at most: memory stays flat whatever the backlog.
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=2)
        self._normalizer = ThreadPoolExecutor(1)
        self._db_writer = ThreadPoolExecutor(1)
        self._index_writer = self._make_index_writer()
        self._stopping = asyncio.Event()
        # A failed write moves `_epoch` on; the consumer then seeks to the stored positions
        # and reads for `_read_epoch` = `_epoch` again. Batches of another epoch are dropped.
        self._epoch = 0
        self._writing_since: float | None = None  # a write to the index is under way
        self._failing_since: float | None = None  # writes fail, none has succeeded since
        self._read_epoch = 0
        # The next offset to index per partition (stored positions, then each write), and
        # what waits in Kafka beyond it.
        self._indexed: dict[PositionKey, int] = {}
        self.backlog = Backlog()
        self._backlog_task: asyncio.Task[None] | None = None
        self._batches_in_hand = 0  # read and not yet written (or dropped)
        self._positions_noted_at = 0.0

    def _make_index_writer(self) -> WriterProcess | BatchWriter:
        """A child process for the writes, unless configured otherwise or impossible.

        An in-memory SQLite database cannot be shared with another process, and the hooks
        travel to the child pickled.
        """
        url = self.engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        in_process = self.settings.writer != "process" or in_memory
        if not in_process:
            try:
                pickle.dumps(self.hooks)
            except Exception as exc:
                log.warning("%s writes in-process: hooks cannot be pickled (%s)", self.name, exc)
                in_process = True
        if in_process:
            return BatchWriter(self.engine, self.cluster.name, self.hooks)
        rendered = url.render_as_string(hide_password=False)
        return WriterProcess(rendered, self.cluster.name, self.hooks)

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid (None when writing in-process or not started yet)."""
        writer = self._index_writer
        return writer.pid if isinstance(writer, WriterProcess) else None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=self.settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=METADATA_REFRESH_MS,
            isolation_level="read_committed",
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=min(3_000, self.settings.session_timeout_ms // 3),
            max_partition_fetch_bytes=1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
            **client_options(self.cluster),
        )
        pattern = subscription_pattern(self.cluster.include, self.cluster.exclude)
        consumer.subscribe(pattern=pattern.pattern, listener=_SeekToStoredPositions(self))
        self._consumer = consumer
        self._normalizer = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-normalize")
        self._db_writer = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-write")
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)
        self._backlog_task = asyncio.create_task(
            self._sample_backlog(), name=f"{self.name}-backlog"
        )
        self.health.running = True

    def status(self) -> ServiceStatus:
        """With the partitions this collector holds: several collectors split them."""
        found = self.health.status()
        found["partitions"] = self.stats.assigned[:MAX_PARTITIONS_SHOWN]
        return found

    def delay_s(self, now: float) -> float | None:
        """How late records reach the index: how old the newest record of the last batch was
        when it was written, or, when records wait in Kafka, at least how long they have
        waited (backlog.py; it grows while anything in the pipeline is stuck), or how long
        a hanging or failing write has lasted. None before the first batch or sample."""
        stats = self.stats
        indexed = None
        if stats.last_batch_at is not None and stats.last_record_timestamp_ms is not None:
            indexed = max(0.0, stats.last_batch_at - stats.last_record_timestamp_ms / 1000)
        delays = [indexed, self.backlog.age_s(self._indexed, now) if self._indexed else None]
        blocked_since = self._writing_since or self._failing_since
        if blocked_since is not None:
            delays.append(now - blocked_since)
        known = [d for d in delays if d is not None]
        return max(known) if known else None

    def records_waiting(self) -> int | None:
        """Records in Kafka that the index does not have yet (None before a sample)."""
        return self.backlog.waiting(self._indexed)

    def pipeline_problem(self, now: float) -> str | None:
        """Why records are not reaching the index, in words (None: they are). A write
        that has not returned for `collector.stall_after_s` is a stall (the writer hangs,
        e.g. stopped or starved); a failed write that no success has followed yet is a
        failure, until the next write succeeds; records that have waited in Kafka that
        long with no write at all mean the reading side is stuck."""
        waiting = self.records_waiting()
        in_kafka = f"{waiting:,} records waiting" if waiting is not None else "records waiting"
        started = self._writing_since
        stall_s = self.settings.stall_after_s
        if started is not None and now - started >= stall_s:
            return f"{self.name}: index writes stalled for {now - started:.0f} s ({in_kafka})"
        if self._failing_since is not None:
            since = time.strftime("%H:%M:%S UTC", time.gmtime(self._failing_since))
            return (
                f"{self.name}: index writes failing since {since}: "
                f"{self.health.last_error or 'unknown error'} ({in_kafka})"
            )
        age = self.backlog.age_s(self._indexed, now) if self._indexed else 0.0
        last_write = self.stats.last_batch_at
        if age >= stall_s and (last_write is None or now - last_write >= stall_s):
            return f"{self.name}: nothing indexed for {age:.0f} s while {in_kafka} in Kafka"
        return None

    async def stop(self) -> None:
        self._stopping.set()
        await cancel_and_wait(self._backlog_task)
        # With index writes failing or hung, waiting for the batches in hand only delays the
        # stop: they were not committed, and the next start reads them again.
        blocked = self.pipeline_problem(time.time()) is not None
        if self._task is not None:
            # Let the batch in hand commit; the loop wakes at least every batch_max_wait_ms.
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=1 if blocked else 15)
            except (TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self._writer is not None:
            if not blocked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.drain(), timeout=30)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        self._normalizer.shutdown(wait=False)
        self._db_writer.shutdown(wait=False)
        self.decoder.close()  # (a re-decode pass sharing it has stopped before the tap)
        await asyncio.to_thread(self._index_writer.close)
        self.health.running = False
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    async def seek_to_stored_positions(self, assigned: list[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        self.stats.assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in consumer.assignment())
        if not assigned:
            return
        keys = [(tp.topic, tp.partition) for tp in assigned]
        stored = await asyncio.to_thread(read_positions, self.engine, self.cluster.name, keys)
        fresh = []
        assigned_now = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        self._indexed = {k: v for k, v in self._indexed.items() if k in assigned_now}
        self.backlog.forget()
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                fresh.append(tp)
                self._indexed.pop((tp.topic, tp.partition), None)  # set at the next sample
            else:
                consumer.seek(tp, offset)
                self._indexed[(tp.topic, tp.partition)] = offset
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        log.info(
            "%s reads %d partitions from their stored positions (%d from the start)",
            self.name, len(assigned), len(fresh),
        )  # fmt: skip

    async def drain(self) -> None:
        """Wait until every batch handed to the writer has committed (or was dropped)."""
        await self._queue.join()

    async def _rewind(self) -> bool:
        """After a failed write: seek every assigned partition to its stored position."""
        consumer = self._consumer
        assert consumer is not None
        epoch = self._epoch
        try:
            await self.seek_to_stored_positions(list(consumer.assignment()))
        except Exception as exc:  # the index may be unreachable for a while
            error = self.health.failed(f"cannot read stored positions: {type(exc).__name__}: {exc}")
            log.warning("%s %s", self.name, error)
            await asyncio.sleep(REWIND_RETRY_S)
            return False
        self._read_epoch = epoch
        return True

    async def _run(self) -> None:
        """Consume, normalize and hand batches to the writer: a three-stage pipeline.

        Normalizing (Python) and writing (SQLite and PostgreSQL drivers release the GIL
        while the database works) run in threads of their own, so on two cores the
        consumer, the normalizer and the database overlap instead of taking turns.
        """
        consumer = self._consumer
        assert consumer is not None
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                await consumer.start()
                break
            except Exception as exc:  # the cluster may be down at start: keep trying
                error = self.health.failed(f"cannot connect: {await explain(self.cluster, exc)}")
                log.warning("%s %s", self.name, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        loop = asyncio.get_running_loop()
        self._writer = asyncio.create_task(self._write_batches(), name=f"{self.name}-writer")
        while not self._stopping.is_set():
            if self._read_epoch != self._epoch and not await self._rewind():
                continue
            epoch = self._read_epoch
            batches = await consumer.getmany(
                timeout_ms=self.settings.batch_max_wait_ms,
                max_records=self.settings.batch_max_records,
            )
            records = [record for partition in batches.values() for record in partition]
            if not records:
                await self._note_idle_positions(consumer)
                continue
            now_ms = int(time.time() * 1000)
            rows, next_offsets = await loop.run_in_executor(
                self._normalizer, normalize_batch, self.cluster.name, records,
                self.conventions, now_ms, self.decoder,
            )  # fmt: skip
            newest = max(record.timestamp for record in records)
            self._batches_in_hand += 1
            await self._queue.put(_Batch(rows, next_offsets, newest, now_ms, epoch))

    async def _note_idle_positions(self, consumer: AIOKafkaConsumer) -> None:
        """With nothing read and nothing in hand, everything before the consumer's positions
        is indexed. Positions also step over what is never a record (transaction markers,
        compacted offsets), which the written offsets alone would count as waiting forever."""
        now = time.monotonic()
        idle = self._batches_in_hand == 0 and self._failing_since is None
        if not idle or self._read_epoch != self._epoch or now - self._positions_noted_at < 1.0:
            return
        self._positions_noted_at = now
        for tp in list(consumer.assignment()):
            try:
                position = await asyncio.wait_for(consumer.position(tp), 0.5)
            except Exception as exc:  # unassigned meanwhile, or no position yet
                log.debug("%s no position for %s: %s", self.name, tp, exc)
                continue
            key = (tp.topic, tp.partition)
            self._indexed[key] = max(self._indexed.get(key, 0), position)

    async def _sample_backlog(self) -> None:
        """Read the end offsets of the assigned partitions every few seconds (backlog.py).
        A partition with nothing indexed yet counts from its first offset."""
        while True:
            await asyncio.sleep(BACKLOG_SAMPLE_S)
            consumer = self._consumer
            assigned = list(consumer.assignment()) if consumer is not None else []
            if consumer is None or not assigned:
                continue
            try:
                at = time.time()
                ends = await consumer.end_offsets(assigned)
                unknown = [tp for tp in assigned if (tp.topic, tp.partition) not in self._indexed]
                starts = await consumer.beginning_offsets(unknown) if unknown else {}
            except Exception as exc:  # the broker's own problem is reported elsewhere
                log.debug("%s cannot read end offsets: %s", self.name, exc)
                continue
            for tp, start in starts.items():
                self._indexed.setdefault((tp.topic, tp.partition), start)
            self.backlog.sample(at, {(tp.topic, tp.partition): end for tp, end in ends.items()})

    async def _write_batches(self) -> None:
        """Add each batch to the writer's transaction; commit when no other batch waits."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            batch = await self._queue.get()
            try:
                if batch.epoch != self._epoch:
                    continue  # read before a failed write: read again from stored positions
                self._writing_since = time.time()
                try:
                    committed = await loop.run_in_executor(
                        self._db_writer, self._index_writer.add, batch.rows,
                        batch.next_offsets, batch.now_ms,
                    )  # fmt: skip
                    if self._queue.empty():
                        committed += await loop.run_in_executor(
                            self._db_writer, self._index_writer.commit
                        )
                except Exception as exc:
                    # Every batch since the last commit is lost: read them again.
                    self._writing_since = None
                    if self._failing_since is None:
                        self._failing_since = time.time()
                    self._epoch += 1
                    self.stats.write_errors += 1
                    error = self.health.failed(f"index write failed: {type(exc).__name__}: {exc}")
                    log.warning(
                        "%s %s (reading again from the stored positions in %.1fs)",
                        self.name, error, delay,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, WRITE_RETRY_MAX_S)
                    continue
                delay = 0.5
                self._writing_since = self._failing_since = None
                # Written: committed now, or with its transaction (at most GROUP_COMMIT_ROWS
                # rows later, or when the queue next runs empty).
                self.stats.records_indexed += committed
                self.stats.batches += 1
                self.stats.last_batch_at = time.time()
                self.stats.last_record_timestamp_ms = batch.newest_timestamp_ms
                self._indexed.update(batch.next_offsets)
                self.health.succeeded()
            finally:
                self._batches_in_hand -= 1
                self._queue.task_done()
