"""The tap's backlog against the real broker: records waiting in Kafka and their age, so a
pipeline stuck on its reading side (no write hangs, none fails) is reported, and a healthy
one — also on a topic with transaction markers — is not."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from collectors.index import migrate
from collectors.index.engine import create_index_engine
from collectors.kafka import tap as tap_module
from collectors.kafka.tap import Tap
from tests.collectors.kafka.test_tap import tap_for, wait_for_rows
from tests.kafka_helpers import create_topic, produce

pytestmark = pytest.mark.kafka

STALL_AFTER_S = 1.5


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Any]:
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def frequent_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tap_module, "BACKLOG_SAMPLE_S", 0.3)


def quick_tap(bootstrap: str, engine: Any, topic: str) -> Tap:
    tap = tap_for(bootstrap, engine, [re.escape(topic)], writer="thread")
    tap.settings = replace(tap.settings, stall_after_s=STALL_AFTER_S)
    return tap


async def until(check: Callable[[], bool], what: str, timeout_s: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {what} after {timeout_s:.0f} s")


async def test_a_caught_up_tap_has_nothing_waiting_even_after_transaction_markers(
    kafka_bootstrap: str, unique_topic: str, sqlite_engine: Any
) -> None:
    await create_topic(kafka_bootstrap, unique_topic, partitions=2)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}"
    )
    await producer.start()
    try:
        for n in range(3):  # each commit leaves a marker at an offset no record has
            async with producer.transaction():
                for i in range(50):
                    await producer.send(unique_topic, b'{"n": %d}' % (n * 50 + i), key=b"%d" % i)
    finally:
        await producer.stop()
    await produce(kafka_bootstrap, unique_topic, [(None, b'{"plain": true}', [])] * 100)
    tap = quick_tap(kafka_bootstrap, sqlite_engine, unique_topic)
    await tap.start()
    try:
        await wait_for_rows(sqlite_engine, unique_topic, 250)
        await until(lambda: tap.records_waiting() == 0, "nothing waiting")
        await asyncio.sleep(STALL_AFTER_S + 0.5)
        now = time.time()
        assert tap.records_waiting() == 0
        assert tap.pipeline_problem(now) is None
        assert (tap.delay_s(now) or 0) < STALL_AFTER_S
    finally:
        await tap.stop()


async def test_a_tap_stuck_before_writing_is_reported_with_the_records_waiting(
    kafka_bootstrap: str,
    unique_topic: str,
    sqlite_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    report_figure: Callable[[str], None],
) -> None:
    await create_topic(kafka_bootstrap, unique_topic, partitions=2)
    tap = quick_tap(kafka_bootstrap, sqlite_engine, unique_topic)
    await tap.start()
    released = threading.Event()
    try:
        await produce(kafka_bootstrap, unique_topic, [(None, b'{"n": 1}', [])] * 100)
        await wait_for_rows(sqlite_engine, unique_topic, 100)
        normalize = tap_module.normalize_batch

        def stuck_normalizer(*args: Any) -> Any:  # e.g. a decoder that never returns
            released.wait(60)
            return normalize(*args)

        monkeypatch.setattr(tap_module, "normalize_batch", stuck_normalizer)
        stuck_at = time.monotonic()
        await produce(kafka_bootstrap, unique_topic, [(None, b'{"n": 2}', [])] * 300)
        await until(lambda: tap.pipeline_problem(time.time()) is not None, "reported", 30)
        visible_s = time.monotonic() - stuck_at
        problem = tap.pipeline_problem(time.time()) or ""
        assert "nothing indexed for" in problem and "300 records waiting" in problem
        assert (tap.delay_s(time.time()) or 0) >= STALL_AFTER_S
        released.set()
        await wait_for_rows(sqlite_engine, unique_topic, 400)
        await until(lambda: tap.pipeline_problem(time.time()) is None, "cleared", 30)
        report_figure(f"reading side stuck: reported {visible_s:.1f} s after the records were sent")
    finally:
        released.set()
        await tap.stop()
