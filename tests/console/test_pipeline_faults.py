"""Faults in the pipeline are visible: a stalled index writer makes /readyz false and puts a
banner on every page in seconds, and once it runs again everything is indexed exactly once.
The test prints the time from the fault to "visible" and from recovery to "caught up"."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from collectors.config import ClusterConfig
from collectors.conventions import Conventions
from collectors.index import migrate
from collectors.index.engine import create_index_engine
from collectors.kafka.tap import Tap
from console.alerts.evaluator import AlertEvaluator, collector_delays_of, collector_problems_of
from console.app import create_app
from tests.collectors.kafka.test_tap import count_rows, rows_of, tap_for
from tests.conftest import (
    _drop_postgres_database,
    free_port,
    fresh_postgres_database,
    make_settings,
    serve_in_thread,
)
from tests.console.test_index_unreachable import allow_connections
from tests.kafka_helpers import create_topic, produce

pytestmark = pytest.mark.kafka

STALL_AFTER_S = 2.0


def assert_each_record_once(engine, topic: str, total: int) -> None:  # type: ignore[no-untyped-def]
    offsets = [(r["partition"], r["offset"]) for r in rows_of(engine, topic)]
    assert len(offsets) == len(set(offsets)) == total


def _all_indexed_and_ready(engine, topic: str, url: str, count: int) -> bool:  # type: ignore[no-untyped-def]
    ready = httpx.get(f"{url}/readyz", timeout=30).status_code == 200
    return ready and count_rows(engine, topic) == count


async def _until(check, what: str, timeout_s: float = 60) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await asyncio.to_thread(check):
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise AssertionError(f"not {what} after {timeout_s:.0f}s")


def console_with_only_a_tap(cluster: ClusterConfig, index_url: str):  # type: ignore[no-untyped-def]
    """A console whose only background service is the cluster's tap (its own group)."""
    settings = make_settings(
        cluster, index_url, collector={"group_id": f"eventscope-fault-{uuid.uuid4().hex[:8]}"}
    )

    def only_the_tap(state):  # type: ignore[no-untyped-def]
        return [Tap(cluster, state.engine, Conventions(), settings.collector)]

    return create_app(settings, mode="all", service_factory=only_the_tap)


async def test_a_stopped_writer_is_visible_and_loses_nothing(
    kafka_cluster: ClusterConfig,
    unique_topic: str,
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    cluster = replace(kafka_cluster, include=(re.escape(unique_topic),))
    settings = make_settings(
        cluster, f"sqlite:///{tmp_path / 'index.db'}",
        collector={"group_id": f"eventscope-fault-{uuid.uuid4().hex[:8]}", "writer": "process",
                   "stall_after_s": STALL_AFTER_S},
        alerts={"evaluate_interval_s": 1},  # the built-in rules, evaluated every second
    )  # fmt: skip
    taps: list[Tap] = []

    def tap_and_alerts(state):  # type: ignore[no-untyped-def]
        taps.append(Tap(cluster, state.engine, Conventions(), settings.collector))
        evaluator = AlertEvaluator(
            state.engine, state.areas.alerts, [cluster], "http://console.test",
            collector_delays_of(taps), collector_problems=collector_problems_of(taps),
        )  # fmt: skip
        return [*taps, evaluator]

    app = create_app(settings, mode="all", service_factory=tap_and_alerts)
    engine = app.state.eventscope.engine
    await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=2)
    batch = [(b"k%d" % i, b'{"n": %d}' % i, []) for i in range(500)]
    with serve_in_thread(app) as url:
        await produce(kafka_cluster.bootstrap, unique_topic, batch)
        await _until(lambda: count_rows(engine, unique_topic) == 500, "indexed")
        assert httpx.get(f"{url}/readyz", timeout=20).status_code == 200
        pid = taps[0].writer_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            await produce(kafka_cluster.bootstrap, unique_topic, batch)

            def stalled() -> bool:
                ready = httpx.get(f"{url}/readyz", timeout=20)
                problems = ready.json()["pipeline"]
                return ready.status_code == 503 and any("stalled" in p for p in problems)

            visible_s = await _until(stalled, "reported stalled")
            page = httpx.get(f"{url}/events", timeout=20).text
            assert 'id="pipeline-banner"' in page and "index writes stalled" in page

            def alert_firing() -> bool:
                firing = httpx.get(f"{url}/api/alerts", timeout=20).json()["firing"]
                return any(alert["rule"] == "IndexWritesFailing" for alert in firing)

            alert_s = visible_s + await _until(alert_firing, "alerted")
        finally:
            os.kill(pid, signal.SIGCONT)
        caught_up_s = await _until(
            lambda: _all_indexed_and_ready(engine, unique_topic, url, 1_000), "caught up"
        )
        await asyncio.sleep(1.0)  # anything duplicated would arrive now
        assert 'id="pipeline-banner"' not in httpx.get(f"{url}/events", timeout=20).text
    report_figure(
        f"writer stopped: visible (readyz 503, banner) after {visible_s:.1f} s "
        f"(stall_after_s={STALL_AFTER_S}), IndexWritesFailing firing after {alert_s:.1f} s; "
        f"caught up {caught_up_s:.1f} s after it resumed"
    )
    assert_each_record_once(engine, unique_topic, 1_000)


async def test_a_postgresql_index_that_refuses_connections_is_visible_and_loses_nothing(
    kafka_cluster: ClusterConfig,
    unique_topic: str,
    postgres_url: str,
    report_figure: Callable[[str], None],
) -> None:
    index_url, name = fresh_postgres_database(postgres_url)
    cluster = replace(kafka_cluster, include=(re.escape(unique_topic),))
    app = console_with_only_a_tap(cluster, index_url)
    engine = app.state.eventscope.engine
    await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=2)
    batch = [(b"k%d" % i, b'{"n": %d}' % i, []) for i in range(500)]
    try:
        with serve_in_thread(app) as url:
            await produce(kafka_cluster.bootstrap, unique_topic, batch)
            await _until(lambda: count_rows(engine, unique_topic) == 500, "indexed")
            allow_connections(postgres_url, name, False)
            try:
                await produce(kafka_cluster.bootstrap, unique_topic, batch)

                def failing() -> bool:
                    ready = httpx.get(f"{url}/readyz", timeout=20)
                    body = ready.json()
                    return (
                        ready.status_code == 503
                        and body["index"]["ready"] is False
                        and any("index writes failing" in p for p in body["pipeline"])
                    )

                visible_s = await _until(failing, "reported failing")
                page = httpx.get(f"{url}/events", timeout=20)
                assert page.status_code == 503 and "index writes failing" in page.text
            finally:
                allow_connections(postgres_url, name, True)
            caught_up_s = await _until(
                lambda: _all_indexed_and_ready(engine, unique_topic, url, 1_000), "caught up"
            )
            await asyncio.sleep(1.0)  # anything duplicated would arrive now
        report_figure(
            f"PostgreSQL refusing connections: visible (readyz 503, banner) after "
            f"{visible_s:.1f} s; caught up {caught_up_s:.1f} s after it accepted them again"
        )
        assert_each_record_once(engine, unique_topic, 1_000)
    finally:
        engine.dispose()
        _drop_postgres_database(postgres_url, name)


def _broker(action: str, data_dir: Path, port: int, check: bool = True) -> None:
    command = [sys.executable, "-m", "console.cli", "kafka", action]
    args = ["--port", str(port), "--data-dir", str(data_dir)]
    done = subprocess.run([*command, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0 or not check, f"kafka {action}: {done.stdout}{done.stderr}"


async def test_a_broker_that_stops_and_starts_again_is_visible_and_loses_nothing(
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    """A broker of its own (the session's is shared): stopped during ingest, started again."""
    port, data_dir = free_port(span=2), tmp_path / "kafka"
    _broker("start", data_dir, port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        topic = f"t-broker-fault-{uuid.uuid4().hex[:8]}"
        cluster = ClusterConfig(name="local", bootstrap=bootstrap, include=(re.escape(topic),))
        app = console_with_only_a_tap(cluster, f"sqlite:///{tmp_path / 'index.db'}")
        engine = app.state.eventscope.engine
        await create_topic(bootstrap, topic, partitions=2)
        batch = [(b"k%d" % i, b'{"n": %d}' % i, []) for i in range(500)]
        with serve_in_thread(app) as url:
            await produce(bootstrap, topic, batch)
            await _until(lambda: count_rows(engine, topic) == 500, "indexed")
            stopped_at = time.monotonic()
            _broker("stop", data_dir, port)

            def unreachable() -> bool:
                ready = httpx.get(f"{url}/readyz", timeout=30)
                return ready.status_code == 503 and not ready.json()["clusters"]["local"]["ready"]

            await _until(unreachable, "reported unreachable")
            visible_s = time.monotonic() - stopped_at
            _broker("start", data_dir, port)
            started_at = time.monotonic()
            await produce(bootstrap, topic, batch)
            await _until(
                lambda: _all_indexed_and_ready(engine, topic, url, 1_000), "caught up", 120
            )
            caught_up_s = time.monotonic() - started_at
            await asyncio.sleep(1.0)  # anything duplicated would arrive now
        report_figure(
            f"broker stopped: visible (readyz 503) {visible_s:.1f} s after the stop began; "
            f"caught up {caught_up_s:.1f} s after it was started again"
        )
        assert_each_record_once(engine, topic, 1_000)
    finally:
        _broker("stop", data_dir, port, check=False)


@contextmanager
def small_file_system(path: Path, size: str) -> Iterator[None]:
    """A tmpfs of `size` at `path` (skips the test where mounting is not allowed)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


async def test_a_full_disk_is_visible_and_loses_nothing_once_there_is_room(
    kafka_cluster: ClusterConfig,
    unique_topic: str,
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    disk = tmp_path / "disk"
    with small_file_system(disk, "3m"):
        cluster = replace(kafka_cluster, include=(re.escape(unique_topic),))
        app = console_with_only_a_tap(cluster, f"sqlite:///{disk / 'index.db'}")
        engine = app.state.eventscope.engine
        await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=2)
        total = 20_000
        value = b'{"pad": "' + b"x" * 480 + b'"}'
        with serve_in_thread(app) as url:
            filled_at = time.monotonic()
            await produce(kafka_cluster.bootstrap, unique_topic, [(None, value, [])] * total)

            def failing() -> bool:
                ready = httpx.get(f"{url}/readyz", timeout=30)
                return ready.status_code == 503 and any(
                    "index writes failing" in p and "full" in p for p in ready.json()["pipeline"]
                )

            await _until(failing, "reported the full disk")
            visible_s = time.monotonic() - filled_at
            page = httpx.get(f"{url}/events", timeout=30)
            assert page.status_code == 200 and 'id="pipeline-banner"' in page.text
            stored = count_rows(engine, unique_topic)
            assert stored < total  # the first batch may already be the one that does not fit
            grown = subprocess.run(
                ["mount", "-o", "remount,size=256m", str(disk)], capture_output=True, check=False
            )
            assert grown.returncode == 0, grown.stderr
            room_at = time.monotonic()
            await _until(
                lambda: _all_indexed_and_ready(engine, unique_topic, url, total), "caught up", 120
            )
            caught_up_s = time.monotonic() - room_at
            await asyncio.sleep(1.0)  # anything duplicated would arrive now
            offsets = [(r["partition"], r["offset"]) for r in rows_of(engine, unique_topic)]
        engine.dispose()
    report_figure(
        f"disk full after {stored:,} of {total:,} records: visible (readyz 503, banner) "
        f"{visible_s:.1f} s after the records were sent; caught up {caught_up_s:.1f} s after "
        "the file system grew"
    )
    assert len(offsets) == len(set(offsets)) == total


async def test_a_collector_with_a_full_disk_stops_within_seconds(
    kafka_cluster: ClusterConfig,
    unique_topic: str,
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    disk = tmp_path / "disk"
    with small_file_system(disk, "2m"):
        engine = create_index_engine(f"sqlite:///{disk / 'index.db'}")
        migrate.upgrade(engine)
        tap = tap_for(kafka_cluster.bootstrap, engine, [re.escape(unique_topic)])
        await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=2)
        await tap.start()
        try:
            value = b'{"pad": "' + b"x" * 480 + b'"}'
            await produce(kafka_cluster.bootstrap, unique_topic, [(None, value, [])] * 10_000)
            await _until(lambda: "failing" in (tap.pipeline_problem(time.time()) or ""), "full")
        finally:
            started = time.monotonic()
            await tap.stop()
            stop_s = time.monotonic() - started
            engine.dispose()
    report_figure(f"collector stopped in {stop_s:.1f} s with its index writes failing (disk full)")
    assert stop_s < 5
