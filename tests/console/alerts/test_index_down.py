"""When the index cannot be written, the receivers still hear of it: directly, once per
outage and receiver, and once more when it is over."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from collectors.index import migrate
from collectors.index.engine import create_index_engine
from console.alerts.delivery import AttemptResult
from console.alerts.evaluator import AlertEvaluator
from console.alerts.index_down import ALERT_NAME, IndexDownNotifier
from console.alerts.settings import AlertSettings, Receiver
from tests.conftest import _drop_postgres_database, fresh_postgres_database
from tests.console.alerts.webhook_receiver import webhook_receiver
from tests.console.test_index_unreachable import allow_connections

ONCALL, TEAM = Receiver("oncall", "http://oncall.test/hook"), Receiver("team", "http://t.test/h")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def recording(answers: dict[str, list[bool]]) -> tuple[Callable[..., Any], list[tuple]]:
    """A sender that records (receiver, status, webhook id) and answers as scripted."""
    sent: list[tuple] = []

    async def send(client, receiver, webhook_id, body, now_s) -> AttemptResult:  # type: ignore[no-untyped-def]
        sent.append((receiver.name, json.loads(body)["status"], webhook_id))
        ok = answers.get(receiver.name, [True]).pop(0) if answers.get(receiver.name) else True
        return AttemptResult(200 if ok else 503, 1.0, None if ok else "HTTP 503", None)

    return send, sent


async def test_it_fires_after_the_grace_once_per_receiver_until_taken_then_resolves() -> None:
    clock = Clock()
    send, sent = recording({"team": [False, True]})
    notifier = IndexDownNotifier("http://console", after_s=30, clock=clock, send=send)
    await notifier.pass_succeeded({"oncall": ONCALL, "team": TEAM})
    await notifier.pass_failed("OperationalError: database or disk is full")
    clock.now += 15
    await notifier.pass_failed("OperationalError: database or disk is full")
    assert sent == []  # a blip shorter than the grace pages no one
    clock.now += 15
    await notifier.pass_failed("OperationalError: database or disk is full")
    clock.now += 15
    await notifier.pass_failed("OperationalError: database or disk is full")
    assert [(r, s) for r, s, _ in sent] == [("oncall", "firing"), ("team", "firing"),
                                           ("team", "firing")]  # fmt: skip
    assert sent[1][2] == sent[2][2]  # the same webhook id: a receiver drops a repeat
    sent.clear()
    await notifier.pass_succeeded({"oncall": ONCALL, "team": TEAM})
    await notifier.pass_succeeded({"oncall": ONCALL, "team": TEAM})
    assert sorted((r, s) for r, s, _ in sent) == [("oncall", "resolved"), ("team", "resolved")]


async def test_a_short_outage_is_never_told_and_a_new_one_starts_afresh() -> None:
    clock = Clock()
    send, sent = recording({})
    notifier = IndexDownNotifier("http://console", after_s=30, clock=clock, send=send)
    await notifier.pass_succeeded({"oncall": ONCALL})
    await notifier.pass_failed("OperationalError: the server closed the connection")
    clock.now += 10
    await notifier.pass_succeeded({"oncall": ONCALL})
    clock.now += 100
    await notifier.pass_failed("OperationalError: connection refused")
    clock.now += 29
    await notifier.pass_failed("OperationalError: connection refused")
    assert sent == []
    clock.now += 1
    await notifier.pass_failed("OperationalError: connection refused")
    assert [(r, s) for r, s, _ in sent] == [("oncall", "firing")]


@pytest.mark.kafka
async def test_a_postgresql_index_refusing_connections_is_told_to_the_receivers(
    postgres_url: str,
    report_figure: Callable[[str], None],
) -> None:
    index_url, name = fresh_postgres_database(postgres_url)
    engine = create_index_engine(index_url)
    migrate.upgrade(engine)
    try:
        with webhook_receiver([200]) as receiver:
            settings = AlertSettings(
                receivers=(Receiver("oncall", receiver.url),), evaluate_interval_s=0.2
            )
            evaluator = AlertEvaluator(
                engine, settings, [], "http://console.test", index_down_after_s=0.5
            )
            await evaluator.start()
            try:
                await asyncio.sleep(0.5)  # a pass that read the receivers
                refused_at = time.monotonic()
                allow_connections(postgres_url, name, False)
                firing = json.loads((await asyncio.to_thread(receiver.wait_for, 1, 20))[0].body)
                told_s = time.monotonic() - refused_at
                allow_connections(postgres_url, name, True)
                back_at = time.monotonic()
                resolved = json.loads((await asyncio.to_thread(receiver.wait_for, 2, 90))[1].body)
                resolved_s = time.monotonic() - back_at
            finally:
                await evaluator.stop()
        assert firing["status"] == "firing" and resolved["status"] == "resolved"
        assert firing["alerts"][0]["labels"]["alertname"] == ALERT_NAME
        assert "Error" in firing["alerts"][0]["annotations"]["description"]
        report_figure(
            f"index refusing connections: receiver told {told_s:.1f} s later (grace 0.5 s); "
            f"told it was over {resolved_s:.1f} s after connections were allowed again"
        )
    finally:
        engine.dispose()
        allow_connections(postgres_url, name, True)
        _drop_postgres_database(postgres_url, name)
