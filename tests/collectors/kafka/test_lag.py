"""The lag sampler against the real broker and both index backends."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from sqlalchemy import insert, select

from collectors.config import ClusterConfig, LagConfig
from collectors.index.lag_models import (
    lag_groups_table,
    lag_rollups_table,
    lag_samples_table,
    lag_status_changes_table,
)
from collectors.index.models import events_table, positions_table
from collectors.kafka.lag import LagSampler
from collectors.kafka.lag_judge import LagJudge
from collectors.kafka.lag_look import ClusterLook, GroupLook, decode_assignment
from collectors.kafka.lag_rules import EvaluationSettings, PartitionStatus
from collectors.kafka.lag_store import ROLLUP_BUCKET_MS, delete_before, roll_up
from tests.kafka_helpers import create_topic, joined_consumer, produce

FAST = LagConfig(interval_s=0.5, window=4, allowed_lag=0)


# --- pure parts -------------------------------------------------------------------------------


def test_assignments_decode_and_bad_bytes_never_crash() -> None:
    raw = ConsumerProtocolMemberAssignment(
        version=0, assignment=[("orders", [0, 2])], user_data=b""
    ).encode()
    assert decode_assignment("consumer", raw) == [("orders", 0), ("orders", 2)]
    assert decode_assignment("connect", raw) == []
    assert decode_assignment("consumer", b"\x00\x00\xff\xff\xff") == []
    assert decode_assignment("consumer", None) == []


def test_judge_prefers_exact_times_and_falls_back_to_interpolation() -> None:
    judge = LagJudge(EvaluationSettings(window=3))
    key = ("t", 0)
    group = GroupLook("g", "Empty", "consumer", committed={key: 10})
    for now, end in ((100.0, 10), (110.0, 20), (120.0, 30)):
        results = judge.judge(ClusterLook(now, [group], {key: end}, {key: 0}), {})
    row = results[0].partitions[0]
    assert row.lag == 20 and row.time_lag_method == "interpolated"
    assert row.time_lag_s == pytest.approx(20.0)  # offset 10 was the end at t=100
    exact = judge.judge(ClusterLook(130.0, [group], {key: 30}, {key: 0}), {("t", 0, 10): 95_000})
    assert exact[0].partitions[0].time_lag_method == "index"
    assert exact[0].partitions[0].time_lag_s == pytest.approx(35.0)
    gone = judge.judge(ClusterLook(140.0, [], {}, {}), {})
    assert gone == [] and judge.windows == {} and judge.end_tables == {}


def test_a_live_owner_turns_stop_into_stall() -> None:
    from collectors.kafka.lag_look import Member

    key = ("t", 0)
    owner = Member("m-1", "client", "10.0.0.1")
    for alive, expected in ((False, PartitionStatus.STOP), (True, PartitionStatus.STALL)):
        judge = LagJudge(EvaluationSettings(window=3))
        state = "Stable" if alive else "Empty"
        group = GroupLook("g", state, "consumer", [owner], {key: owner} if alive else {}, {key: 5})
        for now in (1.0, 2.0, 3.0, 4.0):
            results = judge.judge(ClusterLook(now, [group], {key: 9}, {key: 0}), {})
        assert results[0].partitions[0].evaluation.status is expected


# --- the real broker ----------------------------------------------------------------------------


def _status_of(engine, group_id: str) -> tuple[str | None, dict]:
    with engine.connect() as connection:
        row = connection.execute(
            select(lag_groups_table.c.status, lag_groups_table.c.detail).where(
                lag_groups_table.c.group_id == group_id
            )
        ).first()
    if row is None:
        return None, {}
    return row.status, json.loads(row.detail)


async def _wait_for(check: Callable[[], bool], timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


def _names(tag: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"t-lag-{tag}-{suffix}", f"g-lag-{tag}-{suffix}"


async def test_burrow_statuses_with_real_consumer_groups(index_db, kafka_cluster) -> None:
    bootstrap = kafka_cluster.bootstrap
    scenarios = {tag: _names(tag) for tag in ("ok", "stop", "stall", "warn", "rewind")}
    for topic, _ in scenarios.values():
        await create_topic(bootstrap, topic)
        await produce(bootstrap, topic, [(None, b"x", ())] * 10)
    members: list[AIOKafkaConsumer] = []
    sampler = LagSampler(kafka_cluster, index_db.engine, FAST)
    try:
        # OK: a consumer that keeps up.
        topic, group = scenarios["ok"]
        ok = await joined_consumer(bootstrap, topic, group)
        members.append(ok)
        await ok.commit({TopicPartition(topic, 0): 10})
        # STOP: committed once, then the consumer went away.
        topic, group = scenarios["stop"]
        stopped = await joined_consumer(bootstrap, topic, group)
        await stopped.commit({TopicPartition(topic, 0): 3})
        await stopped.stop()
        # STALL: still in the group, commits the same offset again and again.
        topic, group = scenarios["stall"]
        stalled = await joined_consumer(bootstrap, topic, group)
        members.append(stalled)
        # WARN: moves, but slower than its producer.
        topic, group = scenarios["warn"]
        slow = await joined_consumer(bootstrap, topic, group)
        members.append(slow)
        # REWIND: went back below what it had committed.
        topic, group = scenarios["rewind"]
        rewinding = await joined_consumer(bootstrap, topic, group)
        members.append(rewinding)
        await rewinding.commit({TopicPartition(topic, 0): 8})

        await sampler.start()
        warn_topic = scenarios["warn"][0]
        stall_tp = TopicPartition(scenarios["stall"][0], 0)
        rewind_tp = TopicPartition(scenarios["rewind"][0], 0)
        rewound = False
        offset = 1
        deadline = time.monotonic() + 30
        want = {"ok": "OK", "stop": "ERR", "stall": "ERR", "warn": "WARN", "rewind": "ERR"}
        partition_want = {"stop": "STOP", "stall": "STALL", "warn": "WARN", "rewind": "REWIND"}
        while True:
            await stalled.commit({stall_tp: 2})
            await produce(bootstrap, warn_topic, [(None, b"y", ())] * 3)
            await slow.commit({TopicPartition(warn_topic, 0): offset})
            offset += 1
            if not rewound and sampler.stats.looks >= 2:
                await rewinding.commit({rewind_tp: 4})
                rewound = True
            seen = {
                tag: _status_of(index_db.engine, group) for tag, (_, group) in scenarios.items()
            }
            statuses = {tag: status for tag, (status, _) in seen.items()}
            partitions = {
                tag: detail["partitions"][0]["status"]
                for tag, (_, detail) in seen.items()
                if detail.get("partitions")
            }
            if statuses == want and all(partitions.get(t) == s for t, s in partition_want.items()):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"statuses {statuses}, partitions {partitions}")
            await asyncio.sleep(0.25)
        # Owners come from the decoded assignments; the history recorded the changes.
        _, detail = seen["stall"]
        assert detail["partitions"][0]["owner"]["client_id"]
        assert detail["partitions"][0]["lag"] == 8
        with index_db.engine.connect() as connection:
            changes = (
                connection.execute(
                    select(lag_status_changes_table.c.status).where(
                        lag_status_changes_table.c.group_id == scenarios["stop"][1]
                    )
                )
                .scalars()
                .all()
            )
        assert "ERR" in changes
    finally:
        await sampler.stop()
        for member in members:
            await member.stop()


async def test_offset_lag_matches_the_admin_api(index_db, kafka_cluster) -> None:
    bootstrap = kafka_cluster.bootstrap
    topic, group = _names("admin")
    await create_topic(bootstrap, topic, partitions=3)
    for partition in range(3):
        await produce(bootstrap, topic, [(None, b"v", ())] * (5 + partition), partition=partition)
    member = await joined_consumer(bootstrap, topic, group)
    await member.commit({TopicPartition(topic, 0): 1, TopicPartition(topic, 2): 7})
    await member.stop()
    sampler = LagSampler(kafka_cluster, index_db.engine, FAST)
    try:
        await sampler.sample_once()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await reader.start()
        try:
            ends = await reader.end_offsets(list(committed))
        finally:
            await reader.stop()
    finally:
        await sampler.stop()
    expected = {tp.partition: ends[tp] - meta.offset for tp, meta in committed.items()}
    _, detail = _status_of(index_db.engine, group)
    assert {p["partition"]: p["lag"] for p in detail["partitions"]} == expected == {0: 4, 2: 0}


async def test_time_lag_exact_from_the_index_and_interpolated_otherwise(
    index_db, kafka_cluster
) -> None:
    bootstrap = kafka_cluster.bootstrap
    indexed, group_a = _names("exact")
    plain, group_b = _names("interp")
    await create_topic(bootstrap, indexed)
    await create_topic(bootstrap, plain)
    produced_at = time.time()
    written = await produce(bootstrap, indexed, [(None, b"a", ())] * 4)
    # What the tap would have written for `indexed`: its records and its position.
    now_ms = int(time.time() * 1000)
    with index_db.engine.begin() as connection:
        connection.execute(
            insert(events_table),
            [
                {
                    "cluster": kafka_cluster.name, "topic": indexed, "partition": 0,
                    "offset": offset, "timestamp_ms": int(produced_at * 1000) - 60_000 + offset,
                    "indexed_at_ms": now_ms, "value_size": 1, "value_truncated": False,
                    "is_tombstone": False, "content_type": "binary", "headers": "[]",
                    "is_dlq": False,
                }
                for _, offset in written
            ],
        )  # fmt: skip
        connection.execute(
            insert(positions_table).values(
                cluster=kafka_cluster.name, topic=indexed, partition=0, next_offset=4,
                updated_at_ms=now_ms,
            )
        )  # fmt: skip
    for topic, group in ((indexed, group_a), (plain, group_b)):
        member = await joined_consumer(bootstrap, topic, group)
        await member.commit({TopicPartition(topic, 0): 1 if topic == indexed else 0})
        await member.stop()

    sampler = LagSampler(kafka_cluster, index_db.engine, FAST)
    try:
        await sampler.sample_once()  # end offset of `plain` is 0: nothing to estimate from
        started = time.time()
        await produce(bootstrap, plain, [(None, b"b", ())] * 5)
        await asyncio.sleep(FAST.interval_s)
        await sampler.sample_once()
        await asyncio.sleep(1.0)
        await sampler.sample_once()
        looked = time.time()
    finally:
        await sampler.stop()
    _, exact = _status_of(index_db.engine, group_a)
    row = exact["partitions"][0]
    assert row["time_lag_method"] == "index"
    # Record 1 was stamped 60 s before it was produced.
    assert row["time_lag_s"] == pytest.approx(looked - (produced_at - 60 + 0.001), abs=1.5)
    _, estimated = _status_of(index_db.engine, group_b)
    row = estimated["partitions"][0]
    assert row["time_lag_method"] == "interpolated"
    truth = looked - started  # offset 0 was written right after `started`
    assert abs(row["time_lag_s"] - truth) <= FAST.interval_s + 0.5


def test_rollups_and_chunked_retention(index_db) -> None:
    engine = index_db.engine
    bucket = 1_700_000_100_000 - 1_700_000_100_000 % ROLLUP_BUCKET_MS
    rows = [
        {"cluster": "c", "group_id": "g", "sampled_at_ms": bucket + i * 10_000, "severity": i % 3,
         "total_lag": i * 10, "max_time_lag_s": float(i)}
        for i in range(30)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(lag_samples_table), rows)
    assert roll_up(engine, "c", bucket) == 1
    assert roll_up(engine, "c", bucket) == 1  # recomputing a bucket replaces it
    with engine.connect() as connection:
        rollup = connection.execute(select(lag_rollups_table)).one()
    assert (rollup.samples, rollup.total_lag_max, rollup.severity_max) == (30, 290, 2)
    assert delete_before(engine, lag_samples_table, "sampled_at_ms", "c", bucket + 100_000) == 10
    assert delete_before(engine, lag_rollups_table, "bucket_ms", "c", bucket + 1) == 1
    with engine.connect() as connection:
        left = connection.execute(select(lag_samples_table.c.id)).all()
    assert len(left) == 20


async def test_an_unreachable_cluster_is_retried_not_fatal(index_db) -> None:
    nowhere = ClusterConfig(name="nowhere", bootstrap="127.0.0.1:1")
    sampler = LagSampler(nowhere, index_db.engine, LagConfig(interval_s=0.2))
    await sampler.start()
    try:
        await _wait_for(lambda: sampler.stats.errors >= 1, timeout=20)
        assert sampler.last_error
    finally:
        await sampler.stop()
