"""Event health on a live console and a real broker: a re-sent event, a retry copy, a key
written to a second partition and a version going backwards are found through the API,
on the page and by the alert rules; healthy traffic gives no finding (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Engine

from collectors.config import ClusterConfig
from collectors.index import migrate
from collectors.index.engine import create_index_engine
from console.app import create_app
from tests.conftest import make_settings, serve_in_thread
from tests.kafka_helpers import create_topic, produce

WAIT_S = 60


def _event(event_id: str, source: str = "checkout", extra: tuple = ()) -> list:
    return [("event_id", event_id.encode()), ("source", source.encode()), *extra]


async def make_faults(bootstrap: str, base: str) -> dict[str, str]:
    """One topic per fault, and a healthy one; returns them by name."""
    topics = {name: f"{base}-{name}" for name in ("dup", "split", "seq", "healthy")}
    for name, topic in topics.items():
        await create_topic(bootstrap, topic, partitions=1 if name == "seq" else 2)
    dup = topics["dup"]
    # A producer re-sending without idempotence: the same event twice, and a retry copy
    # (Spring's retry header) of another event, which is not a duplicate.
    await produce(bootstrap, dup, [(b"o-1", b'{"n": 1}', _event("E-1"))], partition=0)
    await produce(bootstrap, dup, [(b"o-1", b'{"n": 1}', _event("E-1"))], partition=0)
    await produce(bootstrap, dup, [(b"o-2", b'{"n": 2}', _event("E-2"))], partition=1)
    retry = (("retry_topic-attempts", (1).to_bytes(4, "big")),)
    await produce(bootstrap, dup, [(b"o-2", b'{"n": 2}', _event("E-2", extra=retry))], 1)
    # A key written to another partition.
    await produce(bootstrap, topics["split"], [(b"cust-7", b"{}", _event("S-1"))], partition=0)
    await produce(bootstrap, topics["split"], [(b"cust-7", b"{}", _event("S-2"))], partition=1)
    # A version going backwards for one key.
    await produce(bootstrap, topics["seq"], [
        (b"order-9", json.dumps({"version": v}).encode(), _event(f"Q-{n}"))
        for n, v in enumerate((1, 2, 3, 2))
    ])  # fmt: skip
    # Healthy: unique ids, each key on one partition, versions going up.
    for partition in (0, 1):
        await produce(bootstrap, topics["healthy"], [
            (f"h-{partition}".encode(), json.dumps({"version": v}).encode(),
             _event(f"H-{partition}-{v}"))
            for v in range(1, 5)
        ], partition=partition)  # fmt: skip
    return topics


def settings_for(cluster: ClusterConfig, url: str, base: str, interval_s: float = 1):  # type: ignore[no-untyped-def]
    return make_settings(
        cluster,
        url,
        collector={"group_id": f"eventscope-eh-{uuid.uuid4().hex[:8]}"},
        event_health={"sequences": [{"topic": f"{base}-*", "field": "$.version"}]},
        alerts={
            "evaluate_interval_s": interval_s,
            "builtin_rules": False,
            "rules": [
                {"name": "Duplicates", "kind": "duplicate_events", "topic": f"{base}-*"},
                {"name": "OutOfOrder", "kind": "ordering_breaks", "topic": f"{base}-*"},
            ],
        },
    )


@contextmanager
def console(cluster: ClusterConfig, url: str, engine: Engine, base: str) -> Iterator[str]:
    app = create_app(settings_for(cluster, url, base), mode="all", engine=engine)
    with serve_in_thread(app) as address:
        yield address


async def wait_for(url: str, check) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S
    body: dict = {}
    async with httpx.AsyncClient(timeout=20) as client:
        while time.monotonic() < deadline:
            body = (await client.get(url)).json()
            if check(body):
                return body
            await asyncio.sleep(0.5)
    raise AssertionError(f"not found in time: {body}")


def _complete(body: dict, topics: dict[str, str]) -> bool:
    dup, order = body["duplicates"], body["ordering"]
    breaks = [b for t in order["sequences"] if t["topic"] == topics["seq"] for b in t["breaks"]]
    healthy = [t for t in order["sequences"] if t["topic"] == topics["healthy"]]
    return bool(
        any(g["topic"] == topics["dup"] for g in dup["duplicates"])
        and any(g["topic"] == topics["dup"] for g in dup["retries"])
        and any(k["topic"] == topics["split"] for k in order["split_keys"])
        and breaks
        and healthy
        and healthy[0]["rows_read"] == 8
    )


async def test_faults_are_found_healthy_traffic_is_not(
    index_db, kafka_cluster, kafka_bootstrap
) -> None:
    base = f"eh-{uuid.uuid4().hex[:8]}"
    topics = await make_faults(kafka_bootstrap, base)
    with console(kafka_cluster, index_db.url, index_db.engine, base) as url:
        body = await wait_for(f"{url}/api/health/events?window=15m",
                              lambda b: _complete(b, topics))  # fmt: skip
        dup = body["duplicates"]
        [copied] = [g for g in dup["duplicates"] if g["topic"] == topics["dup"]]
        assert copied["topic"] == topics["dup"] and copied["extra_copies"] == 1
        assert [(c["partition"], c["kind"], c["producer"]) for c in copied["copies"]] == [
            (0, "plain", "checkout"), (0, "plain", "checkout")]  # fmt: skip
        assert copied["copies"][0]["link"] == f"/events/local/{topics['dup']}/0/0"
        assert copied["seconds_between"] >= 0
        [count] = [c for c in dup["counts"] if c["topic"] == topics["dup"]]
        assert (count["producer"], count["events"], count["extra_copies"]) == ("checkout", 1, 1)
        [retried] = [g for g in dup["retries"] if g["topic"] == topics["dup"]]
        assert sorted(c["kind"] for c in retried["copies"]) == ["plain", "retry"]
        assert [c["topic"] for c in dup["counts"] if base in c["topic"]] == [topics["dup"]]
        assert copied["event_id"] == "E-1" and retried["event_id"] == "E-2"

        [split] = [k for k in body["ordering"]["split_keys"] if k["topic"] == topics["split"]]
        assert split["key"] == "cust-7"
        assert [(p["partition"], p["first_offset"]) for p in split["partitions"]] == [
            (0, 0), (1, 0)]  # fmt: skip
        [seq] = [t for t in body["ordering"]["sequences"] if t["topic"] == topics["seq"]]
        [back] = seq["breaks"]
        assert (back["key"], back["before"], back["after"], back["offset"]) == (
            "order-9", "3", "2", 3)  # fmt: skip

        # Healthy traffic: nothing on its topic.
        healthy = httpx.get(f"{url}/api/health/events",
                            params={"topic": topics["healthy"]}, timeout=20).json()  # fmt: skip
        assert healthy["duplicates"]["counts"] == [] and healthy["duplicates"]["retries"] == []
        assert healthy["ordering"]["total"] == 0
        assert healthy["ordering"]["sequences"][0]["rows_read"] == 8

        page = httpx.get(f"{url}/health/events", params={"window": "1h"}, timeout=20).text
        assert "E-1" in page and "cust-7" in page and "went backwards" in page

        # The alert rules fire for the faulty topics only.
        alerts = await wait_for(f"{url}/api/alerts", lambda b: len([
            a for a in b["firing"] if base in a["labels"].get("topic", "")]) >= 3)  # fmt: skip
        firing = {(a["labels"]["alertname"], a["labels"]["topic"]) for a in alerts["firing"]
                  if base in a["labels"].get("topic", "")}  # fmt: skip
        assert firing == {("Duplicates", topics["dup"]), ("OutOfOrder", topics["split"]),
                          ("OutOfOrder", topics["seq"])}  # fmt: skip


def test_bad_filters_are_refused(live_server) -> None:
    url = live_server.url
    assert httpx.get(f"{url}/api/health/events?window=forever").status_code == 400
    assert httpx.get(f"{url}/api/health/events?window=10s").status_code == 400
    assert httpx.get(f"{url}/api/health/events?cluster=nowhere").status_code == 404
    assert httpx.get(f"{url}/health/events?topic=" + "t" * 300).status_code == 400
    assert httpx.get(f"{url}/api/health/events?colour=red").status_code == 400


@pytest.mark.browser
async def test_the_page_shows_the_faults_and_the_alert_fires(
    kafka_cluster, kafka_bootstrap, tmp_path, page
) -> None:
    base = f"eh-{uuid.uuid4().hex[:8]}"
    topics = await make_faults(kafka_bootstrap, base)
    url_index = f"sqlite:///{tmp_path / 'index.db'}"
    engine = create_index_engine(url_index)
    migrate.upgrade(engine)
    with console(kafka_cluster, url_index, engine, base) as url:
        await wait_for(f"{url}/api/health/events", lambda b: _complete(b, topics))
        await page.goto(f"{url}/events")
        await page.get_by_role("link", name="Health", exact=True).click()
        row = f'#duplicate-list tr[data-event-id="E-1"][data-topic="{topics["dup"]}"]'
        await page.locator(row).wait_for()
        assert "checkout" in await page.locator("#duplicate-counts").inner_text()
        assert "cust-7" in await page.locator("#split-keys").inner_text()
        await page.locator(f'[data-sequence-topic="{topics["seq"]}"]').wait_for()
        # The filter narrows to one topic in place.
        await page.fill("#health-topic", topics["healthy"])
        await page.locator("#no-duplicates").wait_for()
        await page.locator("#no-split-keys").wait_for()
        assert "topic=" in page.url
        # A copy links to its record.
        await page.fill("#health-topic", topics["dup"])
        await page.locator(f"{row} a").nth(1).click()
        await page.wait_for_url(f"**/events/local/{topics['dup']}/0/*")
        # The duplicate's alert shows on /alerts.
        await page.goto(f"{url}/alerts")
        firing = page.locator("#firing", has_text="Duplicates")
        await firing.wait_for(timeout=30_000)
        assert topics["dup"] in await firing.inner_text()
        assert page.problems == []
    engine.dispose()
