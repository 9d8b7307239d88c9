"""Masking on a live console with access control on: what a viewer gets from the API, the
live tail and the event page; the admin's rule pages; and a redrive of a masked record
sending the original bytes."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from collectors.config import settings_from_mapping
from collectors.index.audit_models import audit_table
from console.app import create_app
from console.stores import auth as auth_store
from tests.conftest import role_tokens, serve_in_thread
from tests.console.actions.helpers import read_topic, spring_headers
from tests.kafka_helpers import create_scenario_topics, produce

CARD = "4111111111111111"
EMAIL = "ann@example.com"
SECRET = "Bearer s3cr3t-t0ken"
MASKING = {
    "apply_to": "everyone",  # operators too: the redrive below is of a record they see masked
    "rules": [
        {"name": "emails", "json_path": "$.customer.email"},
        {"name": "auth header", "header": "authorization"},
        {"name": "cards", "regex": r"\b(?:\d[ -]?){12,15}\d\b"},
    ],
}
VIEWER_PASSWORD = "viewer's long password"
SCENARIOS = ("api", "roles", "redrive", "rules", "tail", "browser")


@dataclass
class MaskedConsole:
    url: str
    engine: Engine
    index_url: str
    tokens: dict[str, str]
    topics: dict[str, str]  # scenario -> topic, created before the collector starts

    def get(self, role: str, path: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.get(f"{self.url}{path}", params=params, headers=headers, timeout=20)


@pytest.fixture(scope="module")
def console(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MaskedConsole]:
    index_url = f"sqlite:///{Path(tmp_path_factory.mktemp('masking')) / 'index.db'}"
    base = f"t-masking-{uuid.uuid4().hex[:8]}"
    topics = create_scenario_topics(kafka_bootstrap, base, SCENARIOS)
    settings = settings_from_mapping({
        "index": {"url": index_url},
        "server": {"auth": "on"},
        "clusters": {"local": {"bootstrap": kafka_bootstrap}},
        "collector": {"group_id": f"eventscope-masking-{uuid.uuid4().hex[:8]}"},
        "masking": MASKING,
    })  # fmt: skip
    app = create_app(settings, mode="all")
    with serve_in_thread(app) as url:
        engine = app.state.eventscope.engine
        tokens = role_tokens(engine)
        auth_store.create_user(engine, "vera", VIEWER_PASSWORD, "viewer")
        auth_store.create_user(engine, "adam", VIEWER_PASSWORD, "admin")
        yield MaskedConsole(url, engine, index_url, tokens, topics)


def order(n: int) -> bytes:
    return json.dumps({
        "customer": {"email": EMAIL, "name": "Ann"},
        "card": {"number": CARD},
        "items": [{"sku": "a", "price": 10 + n}],
    }).encode()  # fmt: skip


async def wait_for(console: MaskedConsole, topic: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = console.get("admin", "/api/events", topic=topic).json()["events"]
        if len(events) >= count:
            return events
        await asyncio.sleep(0.3)
    raise AssertionError(f"{topic} was not indexed")


async def make_records(bootstrap: str, base: str) -> tuple[str, str, str]:
    """One order on `base`, and a failed copy on its dead-letter topic `base`-dlt."""
    original, dlt, correlation = base, f"{base}-dlt", f"corr-{uuid.uuid4().hex[:8]}"
    headers = [("authorization", SECRET.encode()), ("note", f"card {CARD}".encode()),
               ("correlation_id", correlation.encode())]  # fmt: skip
    await produce(bootstrap, original, [(f"cust-{CARD}".encode(), order(0), headers)])
    dlq_headers = [*spring_headers(original, 0, 0), ("correlation_id", correlation.encode())]
    dlq_headers = [
        (name, f"card {CARD} declined".encode() if name == "kafka_dlt-exception-message" else v)
        for name, v in dlq_headers
    ]
    await produce(bootstrap, dlt, [(f"cust-{CARD}".encode(), order(1), dlq_headers)])
    return original, dlt, correlation


def assert_hidden(text: str) -> None:
    for original in (CARD, EMAIL, SECRET):
        assert original not in text


async def test_a_viewer_never_sees_masked_values_in_the_api(
    console: MaskedConsole, kafka_bootstrap: str
) -> None:
    original, dlt, correlation = await make_records(kafka_bootstrap, console.topics["api"])
    await wait_for(console, original, 1)
    await wait_for(console, dlt, 1)
    for role in ("viewer", "operator", "admin"):  # apply_to = "everyone"
        search = console.get(role, "/api/events", topic=f"{original},{dlt}")
        assert search.status_code == 200 and len(search.json()["events"]) == 2
        assert_hidden(search.text)
        detail = console.get(role, f"/api/events/local/{original}/0/0")
        assert_hidden(detail.text)
        body = detail.json()
        value = json.loads(body["value"]["text"])  # still valid JSON
        assert value["customer"] == {"email": "***", "name": "Ann"}
        assert value["card"] == {"number": "***"}
        assert body["key"]["text"] == "cust-***"
        headers = dict((name, value) for name, value in body["headers"])
        assert headers["authorization"] == "***" and headers["note"] == "card ***"
        for path in (
            f"/api/dlq/local/{dlt}",
            f"/api/dlq/local/{dlt}/0/0",
            f"/api/trace/{correlation}",
        ):
            answer = console.get(role, path)
            assert answer.status_code == 200, path
            assert_hidden(answer.text)
    trace = console.get("viewer", f"/api/trace/{correlation}").json()
    assert "card *** declined" in json.dumps(trace["problems"])


async def test_operators_and_admins_see_originals_when_masking_is_for_viewers(
    console: MaskedConsole, kafka_bootstrap: str
) -> None:
    """A second console on the same index, configured with apply_to = "viewers"."""
    original, _dlt, _ = await make_records(kafka_bootstrap, console.topics["roles"])
    await wait_for(console, original, 1)
    settings = settings_from_mapping({
        "index": {"url": console.index_url}, "server": {"auth": "on"},
        "masking": {**MASKING, "apply_to": "viewers"},
    })  # fmt: skip
    with TestClient(create_app(settings, mode="console")) as client:
        for role in ("viewer", "operator", "admin"):
            headers = {"Authorization": f"Bearer {console.tokens[role]}"}
            detail = client.get(f"/api/events/local/{original}/0/0", headers=headers)
            assert detail.status_code == 200
            if role == "viewer":
                assert_hidden(detail.text)
            else:
                assert EMAIL in detail.text and CARD in detail.text and SECRET in detail.text


async def test_a_redrive_of_a_masked_record_sends_the_original_bytes(
    console: MaskedConsole, kafka_bootstrap: str
) -> None:
    original, dlt, _ = await make_records(kafka_bootstrap, console.topics["redrive"])
    await wait_for(console, dlt, 1)
    seen_by_operator = console.get("operator", f"/api/dlq/local/{dlt}/0/0")
    assert_hidden(seen_by_operator.text)  # the operator who redrives sees it masked
    created = httpx.post(
        f"{console.url}/api/actions",
        json={"kind": "redrive", "cluster": "local", "items": [f"{dlt}/0/0"]},
        headers={"Authorization": f"Bearer {console.tokens['operator']}"}, timeout=20,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    landed = await read_topic(kafka_bootstrap, original, 2)
    assert landed[1].value == order(1)
    assert landed[1].key == f"cust-{CARD}".encode()


async def test_the_live_tail_is_masked_for_a_viewer(
    console: MaskedConsole, kafka_bootstrap: str
) -> None:
    topic = console.topics["tail"]
    headers = {"Authorization": f"Bearer {console.tokens['viewer']}"}
    received = ""
    async with httpx.AsyncClient(timeout=30) as client:
        url = f"{console.url}/events/tail"
        async with client.stream("GET", url, params={"topic": topic}, headers=headers) as stream:
            assert stream.status_code == 200
            await produce(kafka_bootstrap, topic, [(f"cust-{CARD}".encode(), order(2), [])])
            deadline = time.monotonic() + 30
            async for chunk in stream.aiter_text():
                received += chunk
                if "event: rows" in received and received.endswith("\n\n"):
                    break
                assert time.monotonic() < deadline, "no rows were streamed"
    assert "cust-***" in received
    assert_hidden(received)


async def test_admins_manage_rules_by_api_and_every_change_is_audited(
    console: MaskedConsole, kafka_bootstrap: str
) -> None:
    original, _dlt, _ = await make_records(kafka_bootstrap, console.topics["rules"])
    await wait_for(console, original, 1)
    admin = {"Authorization": f"Bearer {console.tokens['admin']}"}
    url = f"{console.url}/api/admin/masking"
    assert console.get("viewer", "/api/admin/masking").status_code == 403
    listed = httpx.get(url, headers=admin, timeout=20).json()
    assert listed["apply_to"] == "everyone"
    assert [r["source"] for r in listed["rules"] if r["name"] != "prices"] == ["config"] * 3
    bad = httpx.post(url, json={"name": "x", "json_path": "$.a[?(@.b)]"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["field"] == "json_path"
    body = {"name": "prices", "json_path": "$.items[*].price", "topics": re.escape(original)}
    created = httpx.post(url, json=body, headers=admin, timeout=20)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    assert httpx.post(url, json=body, headers=admin, timeout=20).status_code == 409
    detail = console.get("viewer", f"/api/events/local/{original}/0/0").json()
    assert json.loads(detail["value"]["text"])["items"][0]["price"] == "***"
    patched = httpx.patch(f"{url}/{rule_id}", json={"enabled": False}, headers=admin, timeout=20)
    assert patched.json() == {"id": rule_id, "enabled": False}
    assert httpx.patch(f"{url}/{rule_id}", json={"on": 1}, headers=admin).status_code == 400
    assert httpx.delete(f"{url}/{rule_id}", headers=admin, timeout=20).status_code == 200
    assert httpx.delete(f"{url}/{rule_id}", headers=admin, timeout=20).status_code == 404
    with console.engine.connect() as connection:
        actions = [
            row.action
            for row in connection.execute(
                select(audit_table.c.action).where(audit_table.c.target == "prices")
            )
        ]
    assert actions == ["masking.rule.create", "masking.rule.disable", "masking.rule.delete"]


async def login(page, url: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{url}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url(lambda address: "/login" not in address)


@pytest.mark.browser
async def test_a_viewers_event_page_does_not_contain_the_original_value(
    console: MaskedConsole, kafka_bootstrap: str, page
) -> None:
    original, _dlt, _ = await make_records(kafka_bootstrap, console.topics["browser"])
    await wait_for(console, original, 1)
    await login(page, console.url, "vera", VIEWER_PASSWORD)
    await page.goto(f"{console.url}/events/local/{original}/0/0")
    await page.locator("#headers").wait_for()
    html = await page.content()
    assert_hidden(html)
    assert '"***"' in await page.locator("main").inner_text()
    assert page.problems == []


@pytest.mark.browser
async def test_an_admin_adds_turns_off_and_deletes_a_rule_in_the_browser(
    console: MaskedConsole, page
) -> None:
    await login(page, console.url, "adam", VIEWER_PASSWORD)
    await page.goto(f"{console.url}/admin/masking")
    assert await page.locator("#masking-apply-to").inner_text() == "everyone"
    form = page.locator("#new-masking-rule")
    await form.locator("input[name=name]").fill("iban")
    await form.locator("select[name=kind]").select_option("regex")
    await form.locator("input[name=pattern]").fill(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
    await form.get_by_role("button", name="Add rule").click()
    row = page.locator('#masking-rules tr[data-rule="iban"]')
    await row.wait_for()
    assert "on" in await row.inner_text()
    await row.get_by_role("button", name="Turn off").click()
    await page.locator('#masking-rules tr.disabled[data-rule="iban"]').wait_for()
    await (
        page.locator('#masking-rules tr[data-rule="iban"]')
        .get_by_role("button", name="Delete")
        .click()
    )
    await page.locator('#masking-rules tr[data-rule="iban"]').wait_for(state="detached")
    await form.locator("input[name=name]").fill("broken")
    await form.locator("select[name=kind]").select_option("regex")
    await form.locator("input[name=pattern]").fill("(")
    await form.get_by_role("button", name="Add rule").click()
    assert "not a valid regular expression" in await page.locator("p.error").inner_text()
    assert page.problems == []
