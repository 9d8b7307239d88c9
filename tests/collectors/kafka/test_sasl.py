"""SASL/PLAIN end to end: a local broker of its own with a SASL_PLAINTEXT listener, and the
admin overview, the tap, the lag sampler and the action producer connecting through it.

The shared session broker has no SASL listener, so this module starts (and stops) one of
its own on free ports with its own data directory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.config import ClusterConfig, CollectorConfig, LagConfig
from collectors.conventions import Conventions
from collectors.index import migrate
from collectors.index.engine import create_index_engine
from collectors.kafka import local_broker
from collectors.kafka.admin import cluster_overview
from collectors.kafka.lag import LagSampler
from collectors.kafka.local_broker import BrokerError, LocalBroker, parse_sasl_user
from collectors.kafka.tap import Tap
from console.actions.producer import idempotent_producer
from tests.collectors.kafka.test_tap import rows_of, wait_for_rows
from tests.conftest import free_port
from tests.kafka_helpers import create_topic

USER, PASSWORD = "eventscope", "pl@in:secret"
ERROR_DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        data_dir=tmp_path_factory.mktemp("sasl-kafka"),
        port=free_port(span=3),
        sasl_plain_users=((USER, PASSWORD), ("other", "x")),
    )
    try:
        local_broker.start(broker, timeout_s=60, quiet=True)
    except BrokerError as exc:
        log = (
            broker.log_file.read_text(errors="replace")[-3000:] if broker.log_file.exists() else ""
        )
        pytest.fail(f"could not start the SASL broker: {exc}\n{log}")
    try:
        yield broker
    finally:
        local_broker.stop(broker)


def sasl_cluster(broker: LocalBroker, password: str = PASSWORD, **changes: object) -> ClusterConfig:
    assert broker.sasl_bootstrap is not None
    cluster = ClusterConfig(
        name="sasl",
        bootstrap=broker.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username=USER,
        sasl_password=password,
    )
    return dataclasses.replace(cluster, **changes)  # type: ignore[arg-type]


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_index_engine(f"sqlite:///{tmp_path / 'index.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_the_broker_configuration_has_a_plain_listener(sasl_broker: LocalBroker) -> None:
    text = sasl_broker.properties_file.read_text()
    assert f"SASL_PLAINTEXT://127.0.0.1:{sasl_broker.port + 2}" in text
    assert "inter.broker.listener.name=PLAINTEXT" in text
    assert "sasl.enabled.mechanisms=PLAIN" in text
    assert (
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{USER}="{PASSWORD}" user_other="x";'
    ) in text


def test_sasl_users_are_checked() -> None:
    assert parse_sasl_user("alice:pa:ss") == ("alice", "pa:ss")
    for bad in ("alice", "alice:", ":pw", 'bob:pw"x', "bob:back\\slash", "b o b:pw"):
        with pytest.raises(BrokerError):
            parse_sasl_user(bad)


async def test_overview_tap_lag_and_producer_over_sasl(sasl_broker: LocalBroker, engine) -> None:
    topic = f"t-sasl-{uuid.uuid4().hex[:8]}"
    await create_topic(sasl_broker.bootstrap, topic)  # through the PLAINTEXT listener
    cluster = sasl_cluster(sasl_broker, include=(topic,))

    overview = await asyncio.wait_for(cluster_overview(cluster), 30)
    assert topic in [t.name for t in overview.topics]

    async with idempotent_producer(cluster) as producer:  # the action producer's options
        await producer.send_and_wait(topic, b'{"hello": "sasl"}', key=b"k1")

    group = f"eventscope-sasl-{uuid.uuid4().hex[:8]}"
    tap = Tap(cluster, engine, Conventions(), CollectorConfig(group_id=group))
    sampler = LagSampler(cluster, engine, LagConfig())
    await tap.start()
    try:
        await wait_for_rows(engine, topic, 1, timeout_s=30)
        # The tap's group is live now: the sampler must see it through the same listener.
        results = await asyncio.wait_for(sampler.sample_once(), 30)
    finally:
        await sampler.stop()
        await tap.stop()
    (row,) = rows_of(engine, topic)
    assert (row["cluster"], row["key"], row["value"]) == ("sasl", b"k1", b'{"hello": "sasl"}')
    assert group in [result.look.group_id for result in results]


async def test_a_wrong_password_is_a_clear_error_soon(sasl_broker: LocalBroker, engine) -> None:
    cluster = sasl_cluster(sasl_broker, password="not the password")
    started = time.monotonic()
    with pytest.raises(Exception, match="Authentication failed") as raised:
        await asyncio.wait_for(cluster_overview(cluster), ERROR_DEADLINE_S)
    assert time.monotonic() - started < ERROR_DEADLINE_S
    assert "Invalid username or password" in str(raised.value)

    tap = Tap(cluster, engine, Conventions(), CollectorConfig(group_id="sasl-wrong"))
    await tap.start()
    try:
        deadline = time.monotonic() + ERROR_DEADLINE_S
        while tap.health.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert tap.health.last_error is not None, "the tap reported nothing"
        assert "Authentication failed" in tap.health.last_error
    finally:
        await asyncio.wait_for(tap.stop(), 20)
