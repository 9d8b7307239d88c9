"""Delivery through the outbox to a real local HTTP receiver, on both index backends."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from sqlalchemy import select

from collectors.index.alert_models import (
    alert_deliveries_table,
    alert_outbox_table,
    alert_receivers_table,
)
from console.alerts.delivery import DeliveryWorker, send_test
from console.alerts.evaluator import enqueue
from console.alerts.retry_policy import RetryPolicy
from console.alerts.settings import Receiver
from console.alerts.signing import generate_secret, verify
from console.alerts.webhook_format import AlertInstance, build_webhook_body, fingerprint
from console.stores.alerts import create_receiver
from tests.console.alerts.webhook_receiver import webhook_receiver

FAST = RetryPolicy(initial_s=0.05, max_s=0.2, jitter=0.0)


def _body() -> dict:
    from datetime import UTC, datetime

    labels = {"alertname": "LagHigh", "cluster": "local", "group": "orders"}
    alert = AlertInstance(
        labels,
        {"summary": "behind"},
        datetime.now(UTC),
        None,
        "http://console/groups/orders",
        "firing",
    )
    return build_webhook_body(
        receiver="oncall",
        group_labels={"alertname": "LagHigh"},
        alerts=[alert],
        external_url="http://console",
    )


def _setup(engine, url: str, **extra) -> str:
    with engine.begin() as connection:
        create_receiver(
            connection, {"name": "oncall", "url": url, **extra}, int(time.time() * 1000)
        )
        return enqueue(
            connection, "oncall", '{}:{alertname="LagHigh"}', _body(), int(time.time() * 1000)
        )


async def _deliver_until_done(worker: DeliveryWorker, engine, timeout_s: float = 10.0) -> str:
    worker.client = httpx.AsyncClient()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            await worker.run_once()
            with engine.connect() as connection:
                state = connection.execute(select(alert_outbox_table.c.state)).scalar_one()
            if state != "pending":
                return state
            await asyncio.sleep(0.02)
    finally:
        await worker.client.aclose()
    raise AssertionError("the notification was never finished")


def _attempts(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(
            select(alert_deliveries_table).order_by(alert_deliveries_table.c.id)
        ).all()


async def test_body_is_alertmanager_v4_and_signed(index_db) -> None:
    secret = generate_secret()
    with webhook_receiver([200]) as receiver:
        webhook_id = _setup(
            index_db.engine, receiver.url, secret=secret, headers={"X-Team": "payments"}
        )
        state = await _deliver_until_done(DeliveryWorker(index_db.engine, FAST), index_db.engine)
    assert state == "delivered"
    [request] = receiver.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "payments"
    assert request.headers["webhook-id"] == webhook_id
    verify(secret, request.headers, request.body)  # raises when the signature is wrong
    body = json.loads(request.body)
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "oncall"
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    [alert] = body["alerts"]
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    [attempt] = _attempts(index_db.engine)
    assert (attempt.status_code, attempt.outcome, attempt.attempt) == (200, "delivered", 1)
    assert attempt.latency_ms >= 0


async def test_two_500s_then_200_delivers_once_with_three_logged_attempts(index_db) -> None:
    with webhook_receiver([500, 500, 200]) as receiver:
        webhook_id = _setup(index_db.engine, receiver.url)
        state = await _deliver_until_done(DeliveryWorker(index_db.engine, FAST), index_db.engine)
    assert state == "delivered"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [webhook_id] * 3
    assert len({r.body for r in receiver.requests}) == 1
    attempts = _attempts(index_db.engine)
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 500, "retry"),
        (3, 200, "delivered"),
    ]
    assert "HTTP 500" in attempts[0].error


async def test_4xx_is_not_retried_and_410_disables_the_receiver(index_db) -> None:
    with webhook_receiver([400]) as receiver:
        _setup(index_db.engine, receiver.url)
        state = await _deliver_until_done(DeliveryWorker(index_db.engine, FAST), index_db.engine)
    assert state == "failed" and len(receiver.requests) == 1
    with index_db.engine.begin() as connection:
        connection.execute(alert_outbox_table.delete())
        connection.execute(alert_receivers_table.delete())
    with webhook_receiver([410]) as receiver:
        _setup(index_db.engine, receiver.url)
        state = await _deliver_until_done(DeliveryWorker(index_db.engine, FAST), index_db.engine)
    assert state == "failed"
    with index_db.engine.connect() as connection:
        row = connection.execute(select(alert_receivers_table)).one()
    assert row.enabled is False or row.enabled == 0
    assert "410" in row.disabled_reason


async def test_retry_after_is_honoured_and_timeouts_are_retried(index_db) -> None:
    with webhook_receiver([(503, {"Retry-After": "30"})]) as receiver:
        _setup(index_db.engine, receiver.url)
        worker = DeliveryWorker(index_db.engine, FAST)
        worker.client = httpx.AsyncClient()
        before = time.time()
        assert await worker.run_once() == 1
        await worker.client.aclose()
    with index_db.engine.connect() as connection:
        row = connection.execute(select(alert_outbox_table)).one()
    assert row.state == "pending" and row.attempts == 1
    assert row.next_attempt_at_ms >= (before + 29) * 1000  # not the policy's 0.05 s

    with index_db.engine.begin() as connection:
        connection.execute(alert_outbox_table.delete())
        connection.execute(alert_receivers_table.delete())
    with webhook_receiver([200], delay_s=1.0) as receiver:
        _setup(index_db.engine, receiver.url, timeout="0.2s")
        worker = DeliveryWorker(index_db.engine, FAST)
        worker.client = httpx.AsyncClient()
        await worker.run_once()
        await worker.client.aclose()
    last = _attempts(index_db.engine)[-1]
    assert last.outcome == "retry" and last.status_code is None and "timed out" in last.error


async def test_send_test_makes_one_logged_attempt(index_db) -> None:
    with webhook_receiver([200]) as receiver:
        result = await send_test(
            index_db.engine, Receiver("oncall", receiver.url), "http://console"
        )
    assert result.ok
    body = json.loads(receiver.requests[0].body)
    assert body["alerts"][0]["labels"]["alertname"] == "EventscopeTest"
    [attempt] = _attempts(index_db.engine)
    assert attempt.outbox_id is None and attempt.outcome == "delivered"
