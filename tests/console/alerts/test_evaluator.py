"""Alert lifecycle, grouping, silences and the outbox, on both index backends; and a lag
alert driven by a real consumer group on the real broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import delete, insert, select

from collectors.config import LagConfig
from collectors.index.alert_models import alert_outbox_table, alerts_table
from collectors.index.lag_models import lag_groups_table
from collectors.kafka.lag import LagSampler
from console.alerts.delivery import DeliveryWorker
from console.alerts.evaluator import AlertEngine, AlertEvaluator
from console.alerts.grouping import GroupTiming
from console.alerts.retry_policy import RetryPolicy
from console.alerts.rules import rule_from_mapping
from console.alerts.settings import AlertSettings, Receiver
from console.alerts.silences import create_silence, expire_silence
from console.alerts.sources import Probes
from console.stores.alerts import sync_config_receivers
from tests.console.alerts.webhook_receiver import webhook_receiver
from tests.kafka_helpers import create_topic, produce

T0 = 1_700_000_000_000
QUICK = GroupTiming(group_wait_s=10, group_interval_s=60, repeat_interval_s=3600)


def _settings(*rules: dict, timing: GroupTiming = QUICK) -> AlertSettings:
    return AlertSettings(
        rules=tuple(rule_from_mapping(r) for r in rules),
        receivers=(Receiver("oncall", "http://127.0.0.1:9/hook"),),
        timing=timing,
    )


def _lag(engine, group: str, total: int, cluster: str = "local") -> None:
    with engine.begin() as connection:
        connection.execute(
            delete(lag_groups_table).where(
                lag_groups_table.c.cluster == cluster, lag_groups_table.c.group_id == group
            )
        )
        connection.execute(
            insert(lag_groups_table).values(
                cluster=cluster,
                group_id=group,
                sampled_at_ms=T0,
                state="Empty",
                status="ERR" if total else "OK",
                complete=1.0,
                total_lag=total,
                max_lag=total,
                max_time_lag_s=None,
                members=0,
                partition_count=1,
                topics="[]",
                detail="{}",
            )
        )


def _alerts(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(alerts_table).order_by(alerts_table.c.id)).all()


def _outbox(engine) -> list[dict]:
    with engine.connect() as connection:
        rows = connection.execute(select(alert_outbox_table).order_by(alert_outbox_table.c.id))
        return [json.loads(row.body) for row in rows]


def _engine(index_db, settings: AlertSettings) -> AlertEngine:
    sync_config_receivers(index_db.engine, settings.receivers, T0)
    return AlertEngine(index_db.engine, settings, "http://console.example")


def test_pending_firing_resolved_with_group_wait(index_db) -> None:
    settings = _settings(
        {
            "name": "LagHigh",
            "kind": "offset_lag",
            "threshold": 100,
            "for": "30s",
            "labels": {"team": "pay"},
            "annotations": {"summary": "{{ $labels.group }} is {{ $value }} behind"},
        }
    )
    alerts = _engine(index_db, settings)
    _lag(index_db.engine, "orders", 500)
    _lag(index_db.engine, "fine", 3)

    alerts.run(T0, Probes())
    [row] = _alerts(index_db.engine)
    assert row.state == "pending" and _outbox(index_db.engine) == []
    alerts.run(T0 + 20_000, Probes())
    assert _alerts(index_db.engine)[0].state == "pending"
    report = alerts.run(T0 + 30_000, Probes())
    [row] = _alerts(index_db.engine)
    assert row.state == "firing" and row.starts_at_ms == T0 + 30_000 and report.firing == 1
    assert json.loads(row.annotations)["summary"] == "orders is 500 behind"
    assert _outbox(index_db.engine) == []  # the new group waits group_wait first
    alerts.run(T0 + 40_000, Probes())
    [body] = _outbox(index_db.engine)
    assert body["status"] == "firing" and body["groupLabels"] == {
        "alertname": "LagHigh",
        "cluster": "local",
    }
    labels = body["alerts"][0]["labels"]
    assert labels == {
        "alertname": "LagHigh",
        "severity": "warning",
        "team": "pay",
        "cluster": "local",
        "group": "orders",
    }
    assert body["alerts"][0]["generatorURL"].startswith("http://console.example/groups/orders")
    alerts.run(T0 + 50_000, Probes())
    assert len(_outbox(index_db.engine)) == 1  # unchanged: waits repeat_interval

    _lag(index_db.engine, "orders", 0)
    alerts.run(T0 + 60_000, Probes())
    [row] = _alerts(index_db.engine)
    assert row.state == "resolved" and row.ends_at_ms == T0 + 60_000
    alerts.run(T0 + 100_000, Probes())  # group_interval after the last notification
    bodies = _outbox(index_db.engine)
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert bodies[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    alerts.run(T0 + 200_000, Probes())
    assert len(_outbox(index_db.engine)) == 2  # nothing more once resolved was sent


def test_a_flapping_alert_that_resolves_within_group_wait_says_it_was_never_notified(
    index_db,
) -> None:
    alerts = _engine(index_db, _settings({"name": "LagHigh", "kind": "offset_lag", "threshold": 1}))
    for flap in range(3):  # fires for 10 s (the group_wait), clears for 20 s
        start = T0 + flap * 30_000
        _lag(index_db.engine, "orders", 5)
        alerts.run(start, Probes())
        _lag(index_db.engine, "orders", 0)
        alerts.run(start + 10_000, Probes())
    rows = _alerts(index_db.engine)
    assert [row.state for row in rows] == ["resolved"] * 3
    assert _outbox(index_db.engine) == []  # nothing was ever sent...
    for row in rows:  # ...and each alert says so, and why
        assert row.notified_at_ms is None
        assert row.notification_note == "resolved within group_wait (10s)"


def test_keep_firing_for_damps_the_flapping_into_one_notification(index_db) -> None:
    rule = {"name": "LagHigh", "kind": "offset_lag", "threshold": 1, "keep_firing_for": "1m"}
    alerts = _engine(index_db, _settings(rule))
    for flap in range(3):
        start = T0 + flap * 30_000
        _lag(index_db.engine, "orders", 5)
        alerts.run(start, Probes())
        _lag(index_db.engine, "orders", 0)
        alerts.run(start + 10_000, Probes())
        alerts.run(start + 20_000, Probes())
    [row] = _alerts(index_db.engine)
    assert row.state == "firing" and row.cleared_at_ms == T0 + 70_000
    assert row.notified_at_ms == T0 + 10_000  # group_wait after it first fired
    assert [b["status"] for b in _outbox(index_db.engine)] == ["firing"]
    alerts.run(T0 + 120_000, Probes())  # last held at 60 s: 60 s later it resolves
    [row] = _alerts(index_db.engine)
    assert row.state == "resolved" and row.ends_at_ms == T0 + 120_000
    assert row.notification_note is None
    # group_interval has passed since the firing notification: the resolution goes at once.
    assert [b["status"] for b in _outbox(index_db.engine)] == ["firing", "resolved"]
    assert row.last_notified_at_ms == T0 + 120_000


def test_an_alert_resolving_while_silenced_or_without_receivers_says_so(index_db) -> None:
    settings = AlertSettings(
        rules=(
            rule_from_mapping({"name": "Quiet", "kind": "offset_lag", "threshold": 1}),
            rule_from_mapping(
                {"name": "Nobody", "kind": "offset_lag", "threshold": 1, "receivers": ["gone"]}
            ),
        ),
        receivers=(Receiver("oncall", "http://127.0.0.1:9/hook"),),
        timing=QUICK,
    )
    alerts = _engine(index_db, settings)
    with index_db.engine.begin() as connection:
        create_silence(connection, {"alertname": "Quiet"}, 3600, "deploying", "tester", T0)
    _lag(index_db.engine, "orders", 5)
    alerts.run(T0, Probes())
    _lag(index_db.engine, "orders", 0)
    alerts.run(T0 + 60_000, Probes())
    notes = {row.rule_name: row.notification_note for row in _alerts(index_db.engine)}
    assert notes == {"Quiet": "silenced (#1)", "Nobody": "no enabled receiver"}


def test_a_pending_alert_that_stops_holding_is_dropped(index_db) -> None:
    alerts = _engine(
        index_db, _settings({"name": "LagHigh", "kind": "offset_lag", "threshold": 1, "for": "5m"})
    )
    _lag(index_db.engine, "orders", 5)
    alerts.run(T0, Probes())
    _lag(index_db.engine, "orders", 0)
    alerts.run(T0 + 1000, Probes())
    assert _alerts(index_db.engine) == []


def test_a_silenced_alert_sends_nothing(index_db) -> None:
    alerts = _engine(index_db, _settings({"name": "LagHigh", "kind": "offset_lag", "threshold": 1}))
    with index_db.engine.begin() as connection:
        silence = create_silence(
            connection, {"alertname": "LagHigh", "group": "orders"}, 3600, "deploying", "tester", T0
        )
    _lag(index_db.engine, "orders", 5)
    for step in range(5):
        alerts.run(T0 + step * 30_000, Probes())
    assert _alerts(index_db.engine)[0].state == "firing"
    assert _outbox(index_db.engine) == []
    with index_db.engine.begin() as connection:
        assert expire_silence(connection, silence, T0 + 150_000)
    alerts.run(T0 + 160_000, Probes())  # the group is new: it still waits group_wait
    alerts.run(T0 + 170_000, Probes())
    assert [b["status"] for b in _outbox(index_db.engine)] == ["firing"]


def test_grouping_puts_alerts_of_one_group_in_one_notification(index_db) -> None:
    alerts = _engine(index_db, _settings({"name": "LagHigh", "kind": "offset_lag", "threshold": 1}))
    _lag(index_db.engine, "orders", 5)
    _lag(index_db.engine, "billing", 7)
    _lag(index_db.engine, "other", 9, cluster="east")
    alerts.run(T0, Probes())
    alerts.run(T0 + 10_000, Probes())
    bodies = sorted(_outbox(index_db.engine), key=lambda b: b["groupKey"])
    assert [len(b["alerts"]) for b in bodies] == [1, 2]
    assert bodies[1]["commonLabels"] == {
        "alertname": "LagHigh",
        "cluster": "local",
        "severity": "warning",
    }


def test_a_failing_rule_keeps_its_alerts_and_reports_the_error(index_db) -> None:
    settings = _settings({"name": "Down", "kind": "cluster_unreachable"})
    alerts = _engine(index_db, settings)
    alerts.run(T0, Probes(("local",), {"local": (False, "refused")}))
    assert _alerts(index_db.engine)[0].state == "firing"
    alerts.run(T0 + 1000, Probes(("local",), {"local": (True, None)}))
    assert _alerts(index_db.engine)[0].state == "resolved"


async def _consume_and_commit(bootstrap: str, topic: str, group: str, upto: int) -> None:
    """A real member of the group reads the topic and commits after record ``upto - 1``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        deadline = time.monotonic() + 20
        position = -1
        while position < upto - 1:
            assert time.monotonic() < deadline, "the consumer never got its records"
            batches = await consumer.getmany(timeout_ms=200)
            for record in batches.get(partition, []):
                position = max(position, record.offset)
        await consumer.commit({partition: upto})
    finally:
        await consumer.stop()


async def test_lag_alert_fires_when_a_real_consumer_stops_and_resolves_when_it_catches_up(
    index_db, kafka_cluster
) -> None:
    bootstrap = kafka_cluster.bootstrap
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"t-alert-lag-{suffix}", f"g-alert-lag-{suffix}"
    await create_topic(bootstrap, topic)
    await produce(bootstrap, topic, [(None, b"x", ())] * 20)
    await _consume_and_commit(bootstrap, topic, group, upto=5)  # then the consumer stops

    with webhook_receiver([200]) as receiver:
        settings = AlertSettings(
            rules=(
                rule_from_mapping(
                    {
                        "name": "ConsumerBehind",
                        "kind": "offset_lag",
                        "group": group,
                        "threshold": 10,
                    }
                ),
            ),
            receivers=(Receiver("oncall", receiver.url),),
            timing=GroupTiming(group_wait_s=0, group_interval_s=0.5, repeat_interval_s=3600),
        )
        evaluator = AlertEvaluator(index_db.engine, settings, [kafka_cluster], "http://console")
        sync_config_receivers(index_db.engine, settings.receivers, int(time.time() * 1000))
        sampler = LagSampler(kafka_cluster, index_db.engine, LagConfig(interval_s=0.5, window=4))
        worker = DeliveryWorker(index_db.engine, RetryPolicy(initial_s=0.05, max_s=0.2))
        worker.client = httpx.AsyncClient()
        try:
            await sampler.sample_once()
            report = await evaluator.evaluate_once()
            assert report.firing == 1
            await worker.run_once()
            first = json.loads(receiver.wait_for(1)[0].body)
            assert first["status"] == "firing"
            assert first["alerts"][0]["labels"]["group"] == group

            await _consume_and_commit(bootstrap, topic, group, upto=20)  # it catches up
            await sampler.sample_once()
            await asyncio.sleep(0.6)  # group_interval since the firing notification
            report = await evaluator.evaluate_once()
            assert report.firing == 0 and report.resolved == 1
            await worker.run_once()
            second = json.loads(receiver.wait_for(2)[1].body)
            assert second["status"] == "resolved"
            assert second["alerts"][0]["fingerprint"] == first["alerts"][0]["fingerprint"]
        finally:
            await worker.client.aclose()
            await sampler.stop()
