"""The lag sampler: look at every consumer group of a cluster at a fixed interval.

Each look reads, for every consumer group: its state and members (with the partitions
assigned to each member), its committed offsets, and the begin/end offsets of those
partitions. The look is then judged with Burrow's rules (collectors/kafka/lag_rules.py)
and written to the index (collectors/index/lag_models.py):

- offset lag per partition = end offset - committed offset;
- time lag per partition: **exact** ("index") when eventscope has indexed the partition
  past the committed offset: now minus the timestamp of the record at the committed offset
  (or of the first indexed record after it, when that offset holds no record, e.g. a
  transaction marker or a compacted record); else **interpolated** ("interpolated") from
  the (end offset, time) points of earlier looks, as kafka-lag-exporter does; a partition
  with no lag has a time lag of 0 ("caught-up");
- partition status (OK, WARN, STOP, STALL, REWIND) over a window of the last
  ``lag.window`` looks, group status the worst of them (STOP/STALL/REWIND as ERR).

Windows live in memory (one deque per group partition): a restarted sampler judges
trends again once its windows are full. A partition assigned to a live member of the
group is taken as still committing, which is how a STALL (committing, not moving) is told
apart from a STOP (nobody commits any more): Kafka's offset API has no commit time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Engine

from collectors.config import ClusterConfig, LagConfig, lag_health_settings
from collectors.index.lag_models import (
    lag_rollups_table,
    lag_samples_table,
    lag_status_changes_table,
)
from collectors.kafka.admin import client_options
from collectors.kafka.lag_judge import GroupResult, LagJudge
from collectors.kafka.lag_look import ClusterLook, read_groups, read_partition_offsets
from collectors.kafka.lag_rules import (
    EvaluationSettings,
)
from collectors.kafka.lag_store import (
    ROLLUP_BUCKET_MS,
    ExactTimeReader,
    delete_before,
    latest_statuses,
    roll_up,
    store_look,
)
from collectors.services import PeriodicService

log = logging.getLogger("eventscope.lag")

RETENTION_EVERY_S = 60.0
MAX_BACKOFF_S = 60.0


@dataclass
class SamplerStats:
    looks: int = 0
    groups: int = 0
    partitions: int = 0
    last_look_at: float | None = None
    last_duration_s: float | None = None
    errors: int = 0


class LagSampler(PeriodicService):
    """A background service that samples one cluster's consumer groups every interval."""

    def __init__(
        self,
        cluster: ClusterConfig,
        engine: Engine,
        settings: LagConfig,
        exclude_groups: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.name = f"lag[{cluster.name}]"
        self.retry_s = settings.interval_s
        self.max_backoff_s = MAX_BACKOFF_S
        self.cluster = cluster
        self.engine = engine
        self.settings = settings
        self.exclude = frozenset(exclude_groups)
        self.judge = LagJudge(
            EvaluationSettings(window=settings.window, allowed_lag=settings.allowed_lag),
            lag_health_settings(settings),
        )
        self.exact = ExactTimeReader(cluster.name)
        self.stats = SamplerStats()
        self._coordinators: dict[str, int] = {}
        self._previous_status: dict[str, str] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._last_rollup_bucket: int | None = None
        self._last_retention = 0.0

    async def stop(self) -> None:
        await super().stop()
        await self._disconnect()

    async def step(self) -> float:
        started = time.monotonic()
        await self.sample_once()
        return max(0.0, self.settings.interval_s - (time.monotonic() - started))

    async def on_error(self, exc: Exception) -> None:
        """An unreachable cluster or index: the clients are opened afresh next time."""
        self.stats.errors += 1
        await self._disconnect()

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._reader is None:
            await self._disconnect()
            options = client_options(self.cluster)
            options.pop("client_id")
            admin = AIOKafkaAdminClient(client_id="eventscope-lag", **options)
            reader = AIOKafkaConsumer(
                group_id=None, enable_auto_commit=False, **client_options(self.cluster)
            )
            try:
                await admin.start()
                await reader.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await admin.close()
                with contextlib.suppress(Exception):
                    await reader.stop()
                raise
            self._admin, self._reader = admin, reader
        return self._admin, self._reader

    async def _disconnect(self) -> None:
        admin, reader = self._admin, self._reader
        self._admin = self._reader = None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.stop()

    async def read(self) -> ClusterLook:
        """One look at the cluster (Kafka only; nothing is judged or written)."""
        admin, reader = await self._connect()
        timeout = max(30.0, self.settings.interval_s * 3)
        async with asyncio.timeout(timeout):
            groups = await read_groups(admin, self.exclude, self._coordinators)
            keys = {key for group in groups for key in group.committed}
            begin, end = await read_partition_offsets(admin, reader, keys)
        return ClusterLook(time.time(), groups, end, begin)

    async def sample_once(self) -> list[GroupResult]:
        started = time.perf_counter()
        look = await self.read()
        results = await asyncio.to_thread(self.judge_and_store, look)
        self.stats.looks += 1
        self.stats.groups = len(results)
        self.stats.partitions = sum(len(r.partitions) for r in results)
        self.stats.last_look_at = look.time
        self.stats.last_duration_s = time.perf_counter() - started
        return results

    def judge_and_store(self, look: ClusterLook) -> list[GroupResult]:
        """Judge a look and write it (runs in a worker thread)."""
        cluster = self.cluster.name
        if self._previous_status is None:
            self._previous_status = latest_statuses(self.engine, cluster)
        with self.engine.connect() as connection:
            exact = self.exact.read(connection, look)
        results = self.judge.judge(look, exact)
        sampled_at_ms = int(look.time * 1000)
        with self.engine.begin() as connection:
            store_look(connection, cluster, results, sampled_at_ms, self._previous_status)
        for gone in self._previous_status.keys() - {r.look.group_id for r in results}:
            del self._previous_status[gone]
        self._maintain(sampled_at_ms)
        return results

    def _maintain(self, now_ms: int) -> None:
        """Roll closed buckets up and apply retention (chunked), at most once a minute."""
        bucket = now_ms - now_ms % ROLLUP_BUCKET_MS
        cluster = self.cluster.name
        if self._last_rollup_bucket is None:
            self._last_rollup_bucket = bucket
            roll_up(self.engine, cluster, bucket - ROLLUP_BUCKET_MS)
        elif bucket > self._last_rollup_bucket:
            roll_up(self.engine, cluster, self._last_rollup_bucket)
            self._last_rollup_bucket = bucket
        if now_ms / 1000 - self._last_retention < RETENTION_EVERY_S:
            return
        self._last_retention = now_ms / 1000
        raw_cutoff = now_ms - int(self.settings.raw_retention_s * 1000)
        rollup_cutoff = now_ms - int(self.settings.rollup_retention_s * 1000)
        delete_before(self.engine, lag_samples_table, "sampled_at_ms", cluster, raw_cutoff)
        delete_before(self.engine, lag_rollups_table, "bucket_ms", cluster, rollup_cutoff)
        delete_before(
            self.engine, lag_status_changes_table, "changed_at_ms", cluster, rollup_cutoff
        )
