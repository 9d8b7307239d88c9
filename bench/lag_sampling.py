"""Lag sampling benchmark: CPU used by the lag sampler at a given scale.

    python bench/lag_sampling.py --bootstrap 127.0.0.1:9092 [--groups 500] [--partitions 50]
        [--interval 10] [--duration 60] [--index-url sqlite:///...]

1. Creates topics of `--partitions` partitions, one record in each partition, and
   `--groups` consumer groups, each with a committed offset on every partition of one
   topic (so each group has `--partitions` partitions with a lag of 1).
2. Runs the real lag sampler (Kafka look, Burrow evaluation, interpolation, index writes
   with rollups and retention) at `--interval` for `--duration` seconds, and reports the
   CPU time this process used over the wall time (% of one core), with the duration of
   each look.
3. Deletes the topics and groups it created.

Prints a table; nothing is asserted. The broker's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.admin import DeleteGroupsRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_dir, write_summary  # noqa: E402
from collectors.config import ClusterConfig, LagConfig  # noqa: E402
from collectors.index import migrate  # noqa: E402
from collectors.index.engine import create_index_engine  # noqa: E402
from collectors.kafka.lag import LagSampler  # noqa: E402

GROUPS_PER_TOPIC = 50


async def set_up(bootstrap: str, prefix: str, groups: int, partitions: int) -> tuple[list, list]:
    topic_count = max(1, -(-groups // GROUPS_PER_TOPIC))
    topics = [f"{prefix}-t{i}" for i in range(topic_count)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, b"x", partition=p) for topic in topics
            for p in range(partitions)
        ]  # fmt: skip
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    group_ids = [f"{prefix}-g{i}" for i in range(groups)]
    limit = asyncio.Semaphore(20)

    async def commit(index: int, group_id: str) -> None:
        topic = topics[index // GROUPS_PER_TOPIC]
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        async with limit:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
            )
            await consumer.start()
            try:
                consumer.assign(tps)
                await consumer.commit({tp: 0 for tp in tps})
            finally:
                await consumer.stop()

    await asyncio.gather(*(commit(i, g) for i, g in enumerate(group_ids)))
    return topics, group_ids


async def tear_down(bootstrap: str, topics: list[str], group_ids: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        coordinator = await admin.find_coordinator(group_ids[0])
        for start in range(0, len(group_ids), 100):
            request = DeleteGroupsRequest(group_ids[start : start + 100])
            await admin._client.send(coordinator, request)
        await admin.delete_topics(topics)
    finally:
        await admin.close()


async def run(args: argparse.Namespace) -> None:
    prefix = f"bench-lag-{uuid.uuid4().hex[:6]}"
    print(f"setting up {args.groups} groups x {args.partitions} partitions ...", flush=True)
    started = time.monotonic()
    topics, group_ids = await set_up(args.bootstrap, prefix, args.groups, args.partitions)
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    folder = scratch_dir("eventscope-bench-lag-")
    engine = create_index_engine(args.index_url or f"sqlite:///{folder}/index.db")
    migrate.upgrade(engine)
    cluster = ClusterConfig(name="bench", bootstrap=args.bootstrap)
    sampler = LagSampler(cluster, engine, LagConfig(interval_s=args.interval))
    durations: list[float] = []
    try:
        # One warm-up look (connections, coordinator look-ups), not counted.
        await sampler.sample_once()
        if sampler.stats.groups < len(group_ids):
            raise SystemExit(f"only {sampler.stats.groups} groups seen of {len(group_ids)}")
        cpu_before = time.process_time()
        wall_before = time.monotonic()
        while time.monotonic() - wall_before < args.duration:
            look_started = time.monotonic()
            await sampler.sample_once()
            durations.append(time.monotonic() - look_started)
            await asyncio.sleep(max(0.0, args.interval - durations[-1]))
        cpu = time.process_time() - cpu_before
        wall = time.monotonic() - wall_before
        partitions = sampler.stats.partitions
    finally:
        await sampler.stop()
        engine.dispose()
        await tear_down(args.bootstrap, topics, group_ids)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        "| groups | partitions judged | interval | looks | look p50 | look max "
        "| CPU (% of one core) | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {sampler.stats.groups} | {partitions} | {args.interval:.0f} s | {len(durations)} "
        f"| {statistics.median(durations):.2f} s | {max(durations):.2f} s "
        f"| {100 * cpu / wall:.1f} % | {peak_mib:.0f} MiB |"
    )
    if args.summary:
        write_summary(args.summary, "lag sampling", [(
            f"lag sampling: {sampler.stats.groups} groups, {partitions} partitions "
            f"every {args.interval:.0f} s",
            f"{100 * cpu / wall:.1f} % of one core, look p50 {statistics.median(durations):.2f} s, "
            f"peak RSS {peak_mib:.0f} MiB",
        )])  # fmt: skip


def main() -> None:
    # Producing right after creating topics makes aiokafka log each retry; they all succeed.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=50)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--index-url", default="")
    parser.add_argument("--summary", help="also write the result rows to this JSON file")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
