"""The tap against the real broker, writing to SQLite and to PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from collectors.config import ClusterConfig, CollectorConfig
from collectors.conventions import Conventions
from collectors.index.engine import create_index_engine
from collectors.index.models import events_table, positions_table
from collectors.kafka.tap import Tap, subscription_pattern
from tests.conftest import free_port, fresh_postgres_database
from tests.kafka_helpers import create_topic, produce

ROOT = Path(__file__).resolve().parents[3]


def count_rows(engine, topic: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(events_table).where(events_table.c.topic == topic)
        ).scalar_one()


def rows_of(engine, topic: str) -> list[dict]:
    with engine.connect() as connection:
        result = connection.execute(
            select(events_table)
            .where(events_table.c.topic == topic)
            .order_by(events_table.c.partition, events_table.c.offset)
        )
        return [dict(r._mapping) for r in result]


async def wait_for_rows(engine, topic: str, expected: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(count_rows, engine, topic) >= expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count_rows(engine, topic)} of {expected} rows indexed in {topic}")


def tap_for(
    bootstrap: str,
    engine,
    include: list[str],
    value_cap: int = 1_048_576,
    writer: str = "process",
) -> Tap:
    cluster = ClusterConfig(name="local", bootstrap=bootstrap, include=tuple(include))
    settings = CollectorConfig(
        group_id=f"eventscope-test-{uuid.uuid4().hex[:8]}", value_cap=value_cap, writer=writer
    )
    return Tap(cluster, engine, Conventions(value_cap=value_cap), settings)


def test_subscription_pattern_excludes_internal_topics() -> None:
    pattern = subscription_pattern([".*"], ["secret-.*"])
    assert pattern.match("orders")
    assert pattern.match("orders.DLT")
    for topic in (
        "__consumer_offsets",
        "__transaction_state",
        "_schemas",
        "secret-x",
        "connect-offsets",
        "eventscope-internal-jobs",
    ):
        assert not pattern.match(topic), topic
    only = subscription_pattern(["orders", "payments.*"], [])
    assert only.match("payments-v2") and not only.match("shipping")


async def test_records_are_indexed_with_headers_identity_and_positions(
    index_db, kafka_bootstrap, unique_topic
) -> None:
    await create_topic(kafka_bootstrap, unique_topic, partitions=2)
    tap = tap_for(kafka_bootstrap, index_db.engine, [re.escape(unique_topic)])
    await tap.start()
    try:
        await produce(
            kafka_bootstrap,
            unique_topic,
            [
                (
                    b"order-1",
                    b'{"orderId": 1}',
                    [
                        ("ce_id", b"evt-1"),
                        ("ce_type", b"OrderPlaced"),
                        ("ce_source", b"shop"),
                        ("x-correlation-id", b"corr-42"),
                        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                        ("dup", b"first"),
                        ("dup", b"second"),
                    ],
                ),
            ],
            partition=0,
        )
        await produce(kafka_bootstrap, unique_topic, [(b"k", b"plain", [])], partition=1)
        await wait_for_rows(index_db.engine, unique_topic, 2)
    finally:
        await tap.stop()
    first, second = rows_of(index_db.engine, unique_topic)
    assert (first["partition"], first["offset"], first["key"]) == (0, 0, b"order-1")
    assert first["event_id"] == "evt-1" and first["event_type"] == "OrderPlaced"
    assert first["source"] == "shop" and first["correlation_id"] == "corr-42"
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["content_type"] == "json"
    assert json.loads(first["headers"])[-2:] == [["dup", "first"], ["dup", "second"]]
    assert second["value"] == b"plain" and second["event_type"] == unique_topic
    with index_db.engine.connect() as connection:
        positions = dict(
            (r.partition, r.next_offset)
            for r in connection.execute(
                select(positions_table).where(positions_table.c.topic == unique_topic)
            )
        )
    assert positions == {0: 1, 1: 1}


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_restart_resumes_from_stored_positions_without_duplicates(
    index_db, kafka_bootstrap, unique_topic, writer
) -> None:
    await create_topic(kafka_bootstrap, unique_topic)
    include = [re.escape(unique_topic)]
    await produce(kafka_bootstrap, unique_topic, [(None, b"%d" % i, []) for i in range(100)])
    tap = tap_for(kafka_bootstrap, index_db.engine, include, writer=writer)
    await tap.start()
    await wait_for_rows(index_db.engine, unique_topic, 100)
    await tap.stop()
    await produce(kafka_bootstrap, unique_topic, [(None, b"%d" % i, []) for i in range(100, 150)])
    # A different consumer group: only the positions in the index say where to resume.
    tap = tap_for(kafka_bootstrap, index_db.engine, include, writer=writer)
    await tap.start()
    try:
        await wait_for_rows(index_db.engine, unique_topic, 150)
        await asyncio.sleep(1.0)
    finally:
        await tap.stop()
    offsets = [r["offset"] for r in rows_of(index_db.engine, unique_topic)]
    assert offsets == list(range(150))


HOSTILE_RECORDS = [
    (b"\xff\xfe\x00key", b'{"broken json', [("x-correlation-id", b"\xc3\x28bad-utf8")]),
    (b"tomb", None, [("traceparent", b"00-zzzz-nothex-01")]),
    (None, b"no key", [("x-request-id", None)]),
    (b"nul\x00key", b"\x01\x00\x02binary\xff", [("\xe9t\xe9", b"\xff\xff")]),
    (b"big-header", b"{}", [("huge", b"h" * 1_000_000)]),
    (b"many-headers", b"{}", [(f"h{i}", b"v") for i in range(3000)]),
    (b"over-cap", b'{"pad": "' + b"x" * 300_000 + b'"}', []),
    (
        b"rtl",
        "\u202egnp.exe <script>alert(1)</script>".encode(),
        [("ce_type", "\u202eevil".encode())],
    ),
    (b"after", b'{"ok": true}', [("ce_id", b"after-bad-ones")]),
]


async def test_hostile_records_never_block_the_partition(
    index_db, kafka_bootstrap, unique_topic
) -> None:
    await create_topic(kafka_bootstrap, unique_topic)
    tap = tap_for(kafka_bootstrap, index_db.engine, [re.escape(unique_topic)], value_cap=65_536)
    await tap.start()
    try:
        await produce(kafka_bootstrap, unique_topic, HOSTILE_RECORDS, partition=0)
        await wait_for_rows(index_db.engine, unique_topic, len(HOSTILE_RECORDS))
    finally:
        await tap.stop()
    rows = rows_of(index_db.engine, unique_topic)
    assert [r["offset"] for r in rows] == list(range(len(HOSTILE_RECORDS)))
    by_key = {r["key"]: r for r in rows}
    assert by_key[b"\xff\xfe\x00key"]["content_type"] in ("text", "binary")
    tombstone = by_key[b"tomb"]
    assert tombstone["is_tombstone"] and tombstone["trace_id"] is None
    assert json.loads(by_key[None]["headers"]) == [["x-request-id", None]]
    assert by_key[b"nul\x00key"]["content_type"] == "binary"
    huge = json.loads(by_key[b"big-header"]["headers"])[0][1]
    assert huge["truncated"] is True and huge["size"] == 1_000_000
    many = json.loads(by_key[b"many-headers"]["headers"])
    assert len(many) == 1001 and many[-1][1] == "2000 more headers"
    capped = by_key[b"over-cap"]
    assert capped["value_truncated"] and len(capped["value"]) == 65_536
    assert capped["value_size"] > 300_000
    assert by_key[b"after"]["event_id"] == "after-bad-ones"


async def test_a_dead_writer_process_loses_nothing_it_had_not_committed(
    index_db, kafka_bootstrap, unique_topic
) -> None:
    """The writer child dies with batches added but not committed: the tap reads them again
    from the stored positions, and nothing is indexed twice."""
    total = 20_000
    await create_topic(kafka_bootstrap, unique_topic, partitions=2)
    await produce(
        kafka_bootstrap,
        unique_topic,
        [(b"k%d" % i, b'{"n": %d}' % i, [("ce_id", b"id-%d" % i)]) for i in range(total)],
    )
    tap = tap_for(kafka_bootstrap, index_db.engine, [re.escape(unique_topic)])
    await tap.start()
    try:
        await wait_for_rows(index_db.engine, unique_topic, 2_000)
        first_pid = tap.writer_pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        await produce(
            kafka_bootstrap, unique_topic, [(None, b"after %d" % i, []) for i in range(100)]
        )
        total += 100
        await wait_for_rows(index_db.engine, unique_topic, total)
        await asyncio.sleep(1.0)  # anything duplicated would arrive now
        assert tap.writer_pid not in (None, first_pid)
    finally:
        await tap.stop()
    assert tap.stats.write_errors >= 1
    offsets = [(r["partition"], r["offset"]) for r in rows_of(index_db.engine, unique_topic)]
    assert len(offsets) == len(set(offsets)) == total


async def _produce_numbered(bootstrap: str, topic: str, numbers: range) -> None:
    payload = b'{"n": %d, "pad": "' + b"p" * 200 + b'"}'
    records = [(b"k%d" % i, payload % i, [("ce_id", b"id-%d" % i)]) for i in numbers]
    await produce(bootstrap, topic, records)


def collector_command(
    tmp_path: Path, bootstrap: str, topic: str, index_url: str, collector: str = ""
) -> list[str]:
    """`eventscope collect` for `topic` alone, in a consumer group of its own; `collector`:
    more lines of its [collector] table."""
    config = tmp_path / "eventscope.toml"
    config.write_text(
        f'[clusters.local]\nbootstrap = "{bootstrap}"\n'
        f"include = ['{re.escape(topic)}']\n"
        f'[collector]\ngroup_id = "crash-{uuid.uuid4().hex[:8]}"\nbatch_max_records = 2000\n'
        f"{collector}"
        f'[index]\nurl = "{index_url}"\n'
    )
    return [sys.executable, "-m", "console.cli", "--config", str(config), "collect"]


async def wait_for_count(engine, topic: str, at_least: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = count_rows(engine, topic)
            if found >= at_least:
                return found
        except Exception:
            pass  # the tables may not exist yet
        await asyncio.sleep(0.05)
    return count_rows(engine, topic)


def assert_each_offset_once(engine, topic: str, total: int) -> None:
    with engine.connect() as connection:
        stats = connection.execute(
            select(
                events_table.c.partition,
                func.count(),
                func.min(events_table.c.offset),
                func.max(events_table.c.offset),
                func.count(func.distinct(events_table.c.event_id)),
            )
            .where(events_table.c.topic == topic)
            .group_by(events_table.c.partition)
        ).all()
    assert sum(s[1] for s in stats) == total
    assert sum(s[4] for s in stats) == total
    for _partition, count, low, high, _distinct in stats:
        assert (low, high) == (0, count - 1)  # no gap, no duplicate


async def test_kill_9_during_ingest_leaves_every_record_exactly_once(
    kafka_bootstrap, unique_topic, tmp_path
) -> None:
    """A real `eventscope collect` process on SQLite is killed mid-ingest and started again
    (on PostgreSQL: the two-collector test below)."""
    total = 30_000
    await create_topic(kafka_bootstrap, unique_topic, partitions=3)
    await _produce_numbered(kafka_bootstrap, unique_topic, range(total))
    index_url = f"sqlite:///{tmp_path / 'crash.db'}"
    command = collector_command(tmp_path, kafka_bootstrap, unique_topic, index_url)
    env = {**os.environ, "EVENTSCOPE_PORT": str(free_port())}
    engine = create_index_engine(index_url)
    log = (tmp_path / "collector.log").open("ab")

    def start_collector() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    kills = 0
    collector = start_collector()
    try:
        for threshold in (3_000, 12_000, 22_000):
            if await wait_for_count(engine, unique_topic, threshold) >= total:
                break
            collector.send_signal(signal.SIGKILL)
            collector.wait()
            kills += 1
            collector = start_collector()
        await wait_for_rows(engine, unique_topic, total, timeout_s=180)
        await asyncio.sleep(1.5)  # anything duplicated would arrive now
    finally:
        collector.send_signal(signal.SIGKILL)
        collector.wait()
    log.close()
    assert kills >= 1, (tmp_path / "collector.log").read_text()[-2000:]
    assert_each_offset_once(engine, unique_topic, total)
    engine.dispose()


async def test_two_collectors_split_the_partitions_and_a_kill_9_loses_nothing(
    kafka_bootstrap: str,
    unique_topic: str,
    tmp_path: Path,
    postgres_url: str,
    report_figure: Callable[[str], None],
) -> None:
    """Two real `eventscope collect` processes on one PostgreSQL index, one consumer group:
    Kafka splits the partitions between them. One is killed mid-ingest; the other takes its
    partitions over (once the session timeout, 6 s here, evicts the dead member) while more
    records arrive; it starts again and the partitions are split again. Every record is
    indexed exactly once."""
    half = 15_000
    await create_topic(kafka_bootstrap, unique_topic, partitions=4)
    await _produce_numbered(kafka_bootstrap, unique_topic, range(half))
    index_url, _ = fresh_postgres_database(postgres_url)
    # The broker's shortest session (group.min.session.timeout.ms): a quicker takeover.
    command = collector_command(tmp_path, kafka_bootstrap, unique_topic, index_url,
                                "session_timeout_ms = 6000\n")  # fmt: skip
    ports = {"a": free_port(), "b": free_port()}
    engine = create_index_engine(index_url)
    log = (tmp_path / "collectors.log").open("ab")

    def start(name: str) -> subprocess.Popen:
        env = {**os.environ, "EVENTSCOPE_PORT": str(ports[name])}
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    def partitions(name: str) -> set[str]:
        try:
            body = httpx.get(f"http://127.0.0.1:{ports[name]}/readyz", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return set()
        return {p for s in body["services"].values() for p in s.get("partitions", [])}

    async def split(wanted: dict[str, int], timeout_s: float = 60) -> float:
        """Until each named collector holds that many partitions; how long it took."""
        began = time.monotonic()
        while True:
            held = {name: partitions(name) for name in wanted}
            if all(len(held[name]) == count for name, count in wanted.items()):
                assert not set.intersection(*held.values()) or len(held) == 1, held
                return time.monotonic() - began
            assert time.monotonic() - began < timeout_s, held
            await asyncio.sleep(0.2)

    collectors = {"a": start("a"), "b": start("b")}
    try:
        await split({"a": 2, "b": 2})
        assert await wait_for_count(engine, unique_topic, 4_000) >= 4_000
        collectors["a"].send_signal(signal.SIGKILL)
        collectors["a"].wait()
        await _produce_numbered(kafka_bootstrap, unique_topic, range(half, 2 * half))
        takeover_s = await split({"b": 4})
        assert takeover_s < 10  # the default session (10 s) would not have ended yet
        collectors["a"] = start("a")
        rejoin_s = await split({"a": 2, "b": 2})
        await wait_for_rows(engine, unique_topic, 2 * half, timeout_s=120)
        await asyncio.sleep(1.5)  # anything duplicated would arrive now
    finally:
        for process in collectors.values():
            process.send_signal(signal.SIGKILL)
            process.wait()
        log.close()
    report_figure(
        f"two collectors on PostgreSQL (session timeout 6 s): the survivor held every partition "
        f"{takeover_s:.1f} s "
        f"after the other's kill -9; split again {rejoin_s:.1f} s after its restart"
    )
    assert_each_offset_once(engine, unique_topic, 2 * half)
    engine.dispose()
