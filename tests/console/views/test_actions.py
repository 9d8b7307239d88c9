"""/api/actions on a live console: dry run, create, inspect, cancel, bad input, audit."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from sqlalchemy import select

from collectors.index.action_models import items_table
from collectors.index.audit_models import audit_table
from tests.console.actions.helpers import read_topic
from tests.kafka_helpers import create_topic, produce


def csrf_headers(url: str) -> dict[str, str]:
    page = httpx.get(f"{url}/actions", timeout=20).text
    token = re.search(r'name="csrf-token" content="([^"]*)"', page)
    assert token
    return {"X-CSRF-Token": token.group(1)}


async def wait_indexed(url: str, topic: str, count: int) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=20) as client:
        while time.monotonic() < deadline:
            body = (await client.get(f"{url}/api/events", params={"topic": topic})).json()
            if len(body["events"]) >= count:
                return
            await asyncio.sleep(0.3)
    raise AssertionError(f"{topic} was not indexed")


async def wait_job(url: str, job_id: int) -> dict:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=20) as client:
        while time.monotonic() < deadline:
            job = (await client.get(f"{url}/api/actions/{job_id}")).json()
            if job["status"] in ("done", "cancelled", "failed"):
                return job
            await asyncio.sleep(0.2)
    raise AssertionError("the job did not finish")


async def test_replay_by_api_with_dry_run_then_for_real(
    live_server, kafka_bootstrap, unique_topic
) -> None:
    target = f"{unique_topic}-replay"
    await create_topic(kafka_bootstrap, unique_topic)
    await produce(kafka_bootstrap, unique_topic, [(b"k", str(i).encode(), []) for i in range(5)])
    await wait_indexed(live_server.url, unique_topic, 5)
    headers = csrf_headers(live_server.url)
    body = {"kind": "replay", "filter": {"topic": unique_topic, "offset_from": "1",
            "offset_to": "3"}, "target_topic": target}  # fmt: skip
    dry = httpx.post(f"{live_server.url}/api/actions", json={**body, "dry_run": True},
                     headers=headers, timeout=20).json()  # fmt: skip
    assert (dry["dry_run"], dry["to_send"], dry["targets"]) == (True, 3, {target: 3})
    created = httpx.post(f"{live_server.url}/api/actions", json=body, headers=headers, timeout=20)
    assert created.status_code == 201
    job = await wait_job(live_server.url, created.json()["id"])
    assert (job["status"], job["sent"]) == ("done", 3)
    assert [i["target_offset"] for i in job["items"]] == [0, 1, 2]
    assert any("created by" in entry["message"] for entry in job["journal"])
    landed = await read_topic(kafka_bootstrap, target, 3)
    assert [r.value for r in landed] == [b"1", b"2", b"3"]
    listed = httpx.get(f"{live_server.url}/api/actions", timeout=20).json()["jobs"]
    assert any(j["id"] == job["id"] for j in listed)
    with live_server.engine.connect() as connection:
        targets = [r.target for r in connection.execute(select(audit_table.c.target))]
    assert f"job {job['id']}" in targets


async def test_cancel_a_slow_job(live_server, kafka_bootstrap, unique_topic) -> None:
    await create_topic(kafka_bootstrap, unique_topic)
    await produce(kafka_bootstrap, unique_topic, [(None, b"x", []) for _ in range(200)])
    await wait_indexed(live_server.url, unique_topic, 50)
    headers = csrf_headers(live_server.url)
    created = httpx.post(
        f"{live_server.url}/api/actions",
        json={"kind": "replay", "filter": {"topic": unique_topic},
              "target_topic": f"{unique_topic}-slow", "rate": 20},
        headers=headers, timeout=20,
    ).json()  # fmt: skip
    await asyncio.sleep(0.5)
    cancel = httpx.post(f"{live_server.url}/api/actions/{created['id']}/cancel", headers=headers)
    assert cancel.json()["status"] in ("cancelling", "cancelled")
    job = await wait_job(live_server.url, created["id"])
    assert job["status"] == "cancelled"
    assert job["sent"] < job["total"]
    # The chunk taken ahead (the runner takes the next one while it sends) went back to
    # pending: nothing is left in flight.
    i = items_table.c
    with live_server.engine.connect() as connection:
        states = set(connection.execute(select(i.state).where(i.job_id == created["id"])).scalars())
    assert "inflight" not in states and "pending" in states


@pytest.mark.parametrize(
    "body, message",
    [
        ({"kind": "delete"}, "kind"),
        ({"kind": "replay"}, "select something"),
        ({"kind": "replay", "items": ["no-partition"]}, "topic/partition/offset"),
        ({"kind": "replay", "items": ["t/0/1"], "target_topic": "bad topic!"}, "target_topic"),
        ({"kind": "replay", "items": ["t/0/1"], "rate": "fast"}, "rate"),
        ({"kind": "replay", "filter": {"time_from": "yesterday-ish"}}, "time_from"),
        ({"kind": "replay", "filter": {"nope": "1"}}, "unknown field"),
    ],
)
def test_bad_requests_are_400_with_a_message(live_server, body, message) -> None:
    headers = csrf_headers(live_server.url)
    response = httpx.post(f"{live_server.url}/api/actions", json=body, headers=headers)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_unknown_job_is_404_and_pages_render(live_server) -> None:
    assert httpx.get(f"{live_server.url}/api/actions/999999").status_code == 404
    assert httpx.get(f"{live_server.url}/api/actions/abc").status_code == 400
    assert httpx.get(f"{live_server.url}/actions").status_code == 200
    choose = httpx.get(f"{live_server.url}/actions/new?kind=replay")
    assert choose.status_code == 200 and 'id="select-form"' in choose.text
    bad = httpx.get(
        f"{live_server.url}/actions/new", params={"kind": "replay", "time_from": "yesterday-ish"}
    )
    assert bad.status_code == 400 and "time_from" in bad.text


@pytest.mark.browser
async def test_new_replay_from_the_jobs_page_and_from_an_in_place_search(
    live_server, kafka_bootstrap, unique_topic, page
) -> None:
    """No dead end: "New replay…" asks what to send; the events page's replay link and
    trace link follow a search made in place."""
    await create_topic(kafka_bootstrap, unique_topic)
    records = [(b"k", b"{}", [("correlation_id", f"corr-{unique_topic}-{n % 2}".encode())])
               for n in range(3)]  # fmt: skip
    await produce(kafka_bootstrap, unique_topic, records)
    await wait_indexed(live_server.url, unique_topic, 3)

    await page.goto(f"{live_server.url}/actions")
    await page.get_by_role("link", name="New replay…").click()
    await page.fill("#select-form input[name=topic]", unique_topic)
    await page.click("#select-form button")
    assert await page.locator("#preview-count").inner_text() == "3"

    await page.goto(f"{live_server.url}/events")
    await page.fill("input[name=correlation_id]", f"corr-{unique_topic}-0")
    await page.click("#event-filters button[type=submit]")
    await page.wait_for_selector("#open-trace")
    replay = await page.get_attribute("#replay-selection", "href")
    assert replay is not None and f"corr-{unique_topic}-0" in replay
    await page.click("#replay-selection")
    assert await page.locator("#preview-count").inner_text() == "2"
    assert page.problems == []


def test_hostile_bodies_are_clear_errors_never_500(live_server) -> None:
    headers = csrf_headers(live_server.url) | {"Content-Type": "application/json"}
    deep = b"[" * 100_000 + b"]" * 100_000
    for path in ("/api/actions", "/api/alerts/silences", "/api/alerts/rules/preview"):
        answer = httpx.post(live_server.url + path, content=deep, headers=headers, timeout=30)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
        assert "nested too deeply" in answer.json()["error"]

    def endless():  # streamed without a length: refused once past the cap, not at the end
        chunk = b" " * 65_536
        for _ in range(2_000):  # 131 MB if it were all read
            yield chunk

    big = httpx.post(
        live_server.url + "/api/alerts/silences", content=endless(), headers=headers, timeout=60
    )
    assert big.status_code == 413 and "larger than" in big.json()["error"]
