"""Saga pages against the real broker: the seed's two examples, a stuck saga and a missing
compensation, produced to Kafka, indexed by the tap and shown by a live console."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from collectors.config import ClusterConfig, settings_from_mapping
from collectors.index.engine import create_index_engine
from tests.conftest import serve_in_thread
from tests.kafka_helpers import create_topic

SAGA_TIMEOUT_S = 4


@dataclass
class SagaConsole:
    url: str
    prefix: str  # of the topics and the saga ids of this module


@pytest.fixture(scope="module")
def saga_console(kafka_cluster: ClusterConfig, tmp_path_factory) -> Iterator[SagaConsole]:
    from console.app import create_app

    prefix = f"saga-{uuid.uuid4().hex[:8]}-"
    settings = settings_from_mapping(
        {
            "index": {"url": f"sqlite:///{tmp_path_factory.mktemp('sagas') / 'index.db'}"},
            "server": {"auth": "off"},
            "clusters": {
                "local": {"bootstrap": kafka_cluster.bootstrap, "include": [f"{prefix}.*"]}
            },
            "collector": {"group_id": f"eventscope-{prefix}{uuid.uuid4().hex[:6]}"},
            "sagas": {
                "evaluate_interval_s": 0.5,
                "definitions": [
                    {
                        "name": "trip",
                        "topics": [f"{prefix}trip-*"],
                        "timeout_s": SAGA_TIMEOUT_S,
                        "steps": [{"name": "flight"}, {"name": "hotel"}, {"name": "payment"}],
                    }
                ],
            },
        }
    )
    engine = create_index_engine(settings.index.url)
    app = create_app(settings, mode="all", engine=engine)
    try:
        with serve_in_thread(app) as url:
            yield SagaConsole(url, prefix)
    finally:
        engine.dispose()


Event = tuple[str, str, list[tuple[str, bytes]]]  # topic suffix, event type, extra headers


async def send(bootstrap: str, prefix: str, events: list[Event]) -> None:
    """Produce in order, 100 ms apart in event time, with the type in a CloudEvents header."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        base = int(time.time() * 1000)
        for index, (topic, event_type, headers) in enumerate(events):
            await producer.send_and_wait(
                prefix + topic,
                b"{}",
                headers=[("ce_type", event_type.encode()), *headers],
                timestamp_ms=base + index * 100,
            )
    finally:
        await producer.stop()


def trip(saga_id: str, steps: list[str]) -> list[Event]:
    header = [("saga_id", saga_id.encode())]
    return [
        ("trip-replies" if step.endswith(("ed", "Failed")) else "trip-commands", step, header)
        for step in steps
    ]


def payment_flow(correlation_id: str, steps: list[tuple[str, str]]) -> list[Event]:
    header = [("x-correlation-id", correlation_id.encode())]
    return [(topic, step, header) for topic, step in steps]


@dataclass
class Scenarios:
    trip: str
    ride_ok: str
    ride_refund: str
    stuck: str
    missing: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scenarios(saga_console: SagaConsole, kafka_bootstrap: str) -> Scenarios:
    p = saga_console.prefix
    ids = Scenarios(p + "trip-1", p + "ride-ok", p + "ride-refund", p + "trip-stuck", p + "trip-2")
    for topic in ("trip-commands", "trip-replies", "payments", "drivers", "receipts"):
        await create_topic(kafka_bootstrap, p + topic)
    forward = ["ReserveFlight", "FlightReserved", "ReserveHotel", "HotelReserved"]
    failure = ["ChargePayment", "PaymentFailed", "CancelHotel", "HotelCancelled"]
    events = trip(ids.trip, forward + failure + ["CancelFlight", "FlightCancelled"])
    events += payment_flow(
        ids.ride_ok,
        [
            ("payments", "PaymentSucceeded"),
            ("drivers", "DriverCredited"),
            ("receipts", "ReceiptSent"),
        ],
    )
    events += payment_flow(
        ids.ride_refund,
        [
            ("payments", "PaymentSucceeded"),
            ("drivers", "DriverCreditFailed"),
            ("payments", "RefundInitiated"),
        ],
    )
    events += trip(ids.stuck, ["ReserveFlight", "FlightReserved", "ReserveHotel"])
    events += trip(ids.missing, forward + failure)
    await send(kafka_bootstrap, p, events)
    return ids


async def saga_json(
    console: SagaConsole, saga_id: str, until: str, events: int, timeout_s: float = 30
) -> dict:
    """Poll the saga's JSON twin until all its events are in and its status is `until`."""
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as client:
        while time.monotonic() < deadline:
            response = await client.get(f"/api/sagas/{quote(saga_id, safe='')}")
            if response.status_code == 200:
                body = response.json()
                if body["status"] == until and len(body["events"]) == events:
                    return body
            await asyncio.sleep(0.2)
    raise AssertionError(f"saga {saga_id} never became {until}: {body.get('status')}")


async def test_orchestrated_trip_booking_is_compensated_in_reverse(saga_console, scenarios) -> None:
    body = await saga_json(saga_console, scenarios.trip, "compensated", 10)
    assert body["saga_type"] == "trip"
    listed = httpx.get(saga_console.url + "/api/sagas", params={"id": scenarios.trip}).json()
    assert listed["sagas"][0]["failed_step"] == "payment"
    assert body["failure"]["event_type"] == "PaymentFailed"
    assert [s["name"] for s in body["steps"]] == ["flight", "hotel", "payment"]
    assert [s["state"] for s in body["steps"]] == ["compensated", "compensated", "failed"]
    undo = [bar for bar in body["timeline"] if bar["kind"] == "compensation"]
    assert [bar["step"] for bar in undo] == ["hotel", "flight"]
    assert all(len(bar["events"]) == 2 for bar in undo)
    assert body["problems"] == []
    event = httpx.get(saga_console.url + "/api" + undo[-1]["event"]).json()
    assert event["event_type"] == "FlightCancelled"


async def test_the_pages_and_twins_say_how_far_the_sagas_trail_the_index(
    saga_console, scenarios
) -> None:
    """Sagas are derived after ingest (collectors/saga_follower.py): each answer says how
    far behind the index they are."""
    await saga_json(saga_console, scenarios.trip, "compensated", 10)
    listed = httpx.get(saga_console.url + "/api/sagas").json()["freshness"]
    detail = httpx.get(f"{saga_console.url}/api/sagas/{quote(scenarios.trip, safe='')}").json()
    for freshness in (listed, detail["freshness"]):
        assert isinstance(freshness["up_to_date"], bool) and freshness["behind_s"] >= 0
        assert freshness["up_to_date"] == (freshness["behind_s"] == 0)
    page = httpx.get(saga_console.url + "/sagas").text
    assert 'id="saga-freshness"' in page and ("Sagas up to" in page)


async def test_choreographed_payment_flow_by_correlation_id(saga_console, scenarios) -> None:
    ok = await saga_json(saga_console, scenarios.ride_ok, "completed", 3)
    assert ok["saga_type"] is None and ok["correlation_id"] == scenarios.ride_ok
    assert [e["event_type"] for e in ok["events"]] == [
        "PaymentSucceeded",
        "DriverCredited",
        "ReceiptSent",
    ]
    assert ok["links"]["trace"] == f"/trace/{quote(scenarios.ride_ok, safe='')}"
    refund = await saga_json(saga_console, scenarios.ride_refund, "compensated", 3)
    assert refund["failure"]["event_type"] == "DriverCreditFailed"
    undo = [bar for bar in refund["timeline"] if bar["kind"] == "compensation"]
    assert [bar["step"] for bar in undo] == ["payment"]


async def test_stuck_saga_and_missing_compensation_surface_first(saga_console, scenarios) -> None:
    stuck = await saga_json(
        saga_console, scenarios.stuck, "stuck", 3, timeout_s=SAGA_TIMEOUT_S + 30
    )
    assert any("timed out" in problem for problem in stuck["problems"])
    missing = await saga_json(
        saga_console, scenarios.missing, "compensation_incomplete", 8, timeout_s=SAGA_TIMEOUT_S + 30
    )
    assert "compensation missing for step flight" in missing["problems"]
    # The re-evaluation service has stored the statuses: the status filter finds them.
    deadline = time.monotonic() + 10
    while True:
        listed = httpx.get(
            f"{saga_console.url}/api/sagas", params={"status": "stuck", "id": saga_console.prefix}
        ).json()
        if [row["saga_id"] for row in listed["sagas"]] == [scenarios.stuck]:
            break
        assert time.monotonic() < deadline, listed
        await asyncio.sleep(0.3)
    everything = httpx.get(f"{saga_console.url}/api/sagas", params={"id": saga_console.prefix})
    rows = everything.json()["sagas"]
    assert [row["status"] for row in rows[:2]] == ["stuck", "compensation_incomplete"]
    assert len(rows) == 5
    counts = everything.json()["counts"]["by_type"]
    assert {entry["type"] for entry in counts} >= {"trip", None}


def test_bad_filters_are_400_with_a_message(saga_console) -> None:
    for params, word in (
        ({"status": "sleeping"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"min_age": "soon"}, "min_age"),
        ({"limit": "0"}, "limit"),
    ):
        response = httpx.get(f"{saga_console.url}/api/sagas", params=params)
        assert response.status_code == 400 and word in response.json()["error"]
    page = httpx.get(f"{saga_console.url}/sagas", params={"status": "<script>"})
    assert page.status_code == 400 and "<script>" not in page.text
    missing = httpx.get(f"{saga_console.url}/api/sagas/no-such-saga")
    assert missing.status_code == 404


@pytest.mark.browser
async def test_open_a_failed_saga_and_see_its_compensation_bars(
    saga_console, scenarios, page
) -> None:
    await saga_json(saga_console, scenarios.trip, "compensated", 10)
    await page.goto(f"{saga_console.url}/sagas?id={quote(saga_console.prefix)}")
    row = page.locator(f'tr[data-saga-id="{scenarios.trip}"]')
    assert await row.locator(".badge").inner_text() == "compensated"
    assert await row.locator("td.failed-step").inner_text() == "payment"
    await row.get_by_role("link").click()
    await page.wait_for_url("**/sagas/**")
    compensation = page.locator('#saga-timeline .gantt-row[data-kind="compensation"]')
    assert await compensation.count() == 2
    assert await compensation.nth(0).get_attribute("data-step") == "hotel"
    failed = page.locator('#saga-timeline .gantt-row[data-outcome="failed"]')
    assert await failed.get_attribute("data-step") == "payment"
    assert await failed.locator(".gantt-failure").count() == 1
    assert "PaymentFailed" in await page.locator("#saga-failure").inner_text()
    await compensation.nth(1).locator("a").click()
    await page.wait_for_url("**/events/**")
    assert "FlightCancelled" in await page.locator("dl.facts").inner_text()
    assert page.problems == []
