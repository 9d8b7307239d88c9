"""Registry records on a live console with access control on, against the real broker and
registry: the decoded event and dead-letter pages, the raw bytes a redrive sends, masking
of decoded values, a record still waiting for its schema, and the schema pages (subjects,
versions, diff, the compatibility check, and the admin's audited changes)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from collectors.config import settings_from_mapping
from collectors.index.audit_models import audit_table
from collectors.schemas.wire import frame
from console.app import create_app
from console.stores import auth as auth_store
from tests.conftest import role_tokens, serve_in_thread
from tests.console.actions.helpers import read_topic, spring_headers
from tests.console.views.test_masking import login
from tests.kafka_helpers import create_scenario_topics, produce
from tests.schema_fixtures import ORDER_AVRO, Serializers, order

pytestmark = pytest.mark.kafka
PASSWORD = "a long enough password"
SCENARIOS = ("pages", "dlq", "masked", "pending", "subjects", "produce")


@dataclass
class RegistryConsole:
    url: str
    engine: Engine
    registry_url: str
    tokens: dict[str, str]
    topics: dict[str, str]

    def call(self, role: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=20, **kwargs)  # type: ignore[arg-type]

    def get(self, role: str, path: str, **params: str) -> httpx.Response:
        return self.call(role, "GET", path, params=params)


@pytest.fixture(scope="module")
def console(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryConsole]:
    index_url = f"sqlite:///{Path(tmp_path_factory.mktemp('schemas')) / 'index.db'}"
    base = f"t-schemas-{uuid.uuid4().hex[:8]}"
    topics = create_scenario_topics(kafka_bootstrap, base, SCENARIOS)
    settings = settings_from_mapping({
        "index": {"url": index_url},
        "server": {"auth": "on"},
        "clusters": {"local": {"bootstrap": kafka_bootstrap, "include": [f"{base}.*"],
                               "schema_registry": {"url": schema_registry_url}}},
        "collector": {"group_id": f"eventscope-schemas-{uuid.uuid4().hex[:8]}"},
        "masking": {"rules": [{"name": "emails", "json_path": "$.email",
                               "topics": f"{topics['masked']}.*"}]},
    })  # fmt: skip
    app = create_app(settings, mode="all")
    with serve_in_thread(app) as url:
        engine = app.state.eventscope.engine
        tokens = role_tokens(engine)
        auth_store.create_user(engine, "ada", PASSWORD, "admin")
        auth_store.create_user(engine, "vic", PASSWORD, "viewer")
        auth_store.create_user(engine, "oli", PASSWORD, "operator")
        yield RegistryConsole(url, engine, schema_registry_url, tokens, topics)


async def indexed(console: RegistryConsole, topic: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = console.get("admin", "/api/events", topic=topic).json()["events"]
        if len(events) >= count:
            return events
        await asyncio.sleep(0.3)
    raise AssertionError(f"{topic} was not indexed")


async def avro_records(
    console: RegistryConsole, kafka_bootstrap: str, topic: str, n: int = 1
) -> list[bytes]:
    serializers = Serializers(console.registry_url, topic)
    values = [serializers.value(serializers.avro, order(f"corr-{topic}-{i}")) for i in range(n)]
    serializers.close()
    await produce(
        kafka_bootstrap, topic, [(f"order-{i}".encode(), v, []) for i, v in enumerate(values)]
    )
    await indexed(console, topic, n)
    return values


@pytest.mark.browser
async def test_an_avro_event_page_shows_the_decoded_record_and_the_raw_bytes(
    console: RegistryConsole, kafka_bootstrap: str, page
) -> None:
    topic = console.topics["pages"]
    await avro_records(console, kafka_bootstrap, topic)
    detail = console.get("viewer", f"/api/events/local/{topic}/0/0").json()
    assert detail["decode_state"] == "decoded"
    assert detail["decoded_value"]["metadata"]["correlationId"] == f"corr-{topic}-0"
    assert detail["schemas"][0]["subjects"][0]["subject"] == f"{topic}-value"
    assert detail["value"]["b64"]  # the raw bytes too, as sent
    found = console.get("viewer", "/api/events", correlation_id=f"corr-{topic}-0").json()
    assert [e["offset"] for e in found["events"]] == [0]

    await login(page, console.url, "vic", PASSWORD)
    await page.goto(f"{console.url}/events/local/{topic}/0/0")
    assert await page.get_attribute("#decode-state", "data-state") == "decoded"
    decoded = await page.inner_text("#decoded-value")
    assert f'"correlationId": "corr-{topic}-0"' in decoded
    assert '"amount": "79.90"' in decoded
    assert not await page.is_visible("#payload")  # the raw bytes wait behind their summary
    await page.click("#raw-bytes summary")
    assert await page.is_visible("#payload")
    assert await page.get_attribute("#payload", "data-kind") == "hex"
    await page.click(f"text={topic}-value v1")
    await page.wait_for_url(f"**/schemas/local/{topic}-value?version=1")
    assert "OrderPlaced" in await page.inner_text("#schema-text")
    assert page.problems == []


@pytest.mark.browser
async def test_an_avro_dead_letter_is_shown_decoded_and_redriven_byte_identical(
    console: RegistryConsole, kafka_bootstrap: str, page
) -> None:
    original = console.topics["dlq"]
    dlt = f"{original}-dlt"
    serializers = Serializers(console.registry_url, original)
    value = serializers.value(serializers.avro, order("corr-dead-letter"))
    key = serializers.key(serializers.avro_key, "order-dead")
    serializers.close()
    await produce(kafka_bootstrap, dlt, [(key, value, spring_headers(original, 0, 0))])
    await indexed(console, dlt, 1)

    await login(page, console.url, "ada", PASSWORD)
    await page.goto(f"{console.url}/dlq/local/{dlt}/0/0")
    assert await page.get_attribute("#decode-state", "data-state") == "decoded"
    assert '"correlationId": "corr-dead-letter"' in await page.inner_text("#decoded-value")
    assert await page.inner_text("dl.facts dd >> nth=1") == "order-dead"  # the decoded key
    assert page.problems == []

    created = console.call(
        "operator", "POST", "/api/actions",
        json={"kind": "redrive", "cluster": "local", "items": [f"{dlt}/0/0"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    [landed] = await read_topic(kafka_bootstrap, original, 1)
    assert (landed.key, landed.value) == (key, value)  # the original bytes, not the decoded JSON


async def test_masking_applies_to_decoded_values_and_withholds_the_bytes(
    console: RegistryConsole, kafka_bootstrap: str
) -> None:
    topic = console.topics["masked"]
    await avro_records(console, kafka_bootstrap, topic)
    seen = console.get("viewer", f"/api/events/local/{topic}/0/0").json()
    assert seen["decoded_value"]["email"] == "***"
    assert seen["value"] is None and seen["value_withheld"] is True
    assert "ada@example.com" not in console.get("viewer", f"/events/local/{topic}/0/0").text
    admin = console.get("admin", f"/api/events/local/{topic}/0/0").json()
    assert admin["decoded_value"]["email"] == "ada@example.com"  # the rules are for viewers


@pytest.mark.browser
async def test_a_record_whose_schema_is_unknown_says_so_and_keeps_its_bytes(
    console: RegistryConsole, kafka_bootstrap: str, page
) -> None:
    topic = console.topics["pending"]
    value = frame(987_654, b"\x02\x06abc")
    await produce(kafka_bootstrap, topic, [(None, value, [])])
    [event] = await indexed(console, topic, 1)
    assert event["decode_state"] == "pending"
    assert event["decode_note"].startswith("schema 987654 unavailable (")
    await login(page, console.url, "vic", PASSWORD)
    await page.goto(f"{console.url}/events/local/{topic}/0/0")
    assert await page.get_attribute("#decode-state", "data-state") == "pending"
    assert "not decoded yet" in await page.inner_text("#decode-state")
    assert await page.is_visible("#payload")  # the bytes, in hex
    assert page.problems == []


@pytest.mark.browser
async def test_schema_pages_compatibility_check_and_audited_admin_changes(
    console: RegistryConsole, kafka_bootstrap: str, page
) -> None:
    topic = console.topics["subjects"]
    subject = f"{topic}-value"
    await avro_records(console, kafka_bootstrap, topic)
    listing = console.get("viewer", "/api/schemas", q=topic).json()
    [row] = listing["subjects"]
    assert (row["subject"], row["schema_type"], row["latest_version"]) == (subject, "AVRO", 1)
    assert row["topics"] == [f"{topic} (value)"]

    widened = {**ORDER_AVRO, "fields": [*ORDER_AVRO["fields"],
               {"name": "note", "type": ["null", "string"], "default": None}]}  # fmt: skip
    narrowed = {**ORDER_AVRO, "fields": [*ORDER_AVRO["fields"], {"name": "must", "type": "string"}]}
    check = f"/api/schemas/local/{subject}/compatibility"
    assert console.call("viewer", "POST", check, json={"schema": json.dumps(widened)}).json()[
        "is_compatible"
    ] in (True, False)
    refused = console.call("viewer", "POST", f"/api/schemas/local/{subject}/versions",
                           json={"schema": json.dumps(widened)})  # fmt: skip
    assert refused.status_code == 403  # registering is for admins
    assert console.call("viewer", "POST", check, json={"schema": ""}).status_code == 400

    await login(page, console.url, "ada", PASSWORD)
    await page.goto(f"{console.url}/schemas")
    await page.fill("#subject-query", topic)
    await page.wait_for_selector(f"tr[data-subject='{subject}']")
    assert f"{topic} (value)" in await page.inner_text(f"tr[data-subject='{subject}']")
    await page.click(f"tr[data-subject='{subject}'] a")
    await page.wait_for_url(f"**/schemas/local/{subject}")

    # Set BACKWARD, then check a candidate that breaks it and one that does not.
    await page.select_option("#compatibility-level-form select", "BACKWARD")
    await page.click("#compatibility-level-form button")
    await page.wait_for_selector("#schema-done")
    assert await page.inner_text("#compatibility-level") == "BACKWARD"
    await page.fill("#compatibility-form textarea", json.dumps(narrowed))
    await page.click("#compatibility-form button")
    await page.wait_for_selector("#compatibility-result .badge.err")
    await page.fill("#compatibility-form textarea", json.dumps(widened))
    await page.click("#compatibility-form button")
    await page.wait_for_selector("#compatibility-result .badge.ok")

    # Register the widened schema as version 2; compare it with version 1.
    await page.fill("#register-form textarea", json.dumps(widened, indent=1))
    await page.click("#register-form button")
    await page.wait_for_url("**version=2**")
    assert "version 2 registered" in await page.inner_text("#schema-done")
    await page.click("#compare a")
    await page.wait_for_selector("#schema-diff")
    diff = await page.inner_text("#schema-diff")
    assert '+      "name": "note",' in diff

    # Delete version 2: the page asks first (the test's browser says no, then yes).
    await page.goto(f"{console.url}/schemas/local/{subject}?version=2")
    await page.click("#delete-version-form button")
    assert page.problems == [f"dialog: Delete version 2 of {subject}?"]
    assert console.get("admin", f"/api/schemas/local/{subject}").json()["versions"] == [1, 2]
    page.problems.clear()
    await page.evaluate("window.confirm = () => true")
    await page.click("#delete-version-form button")
    await page.wait_for_selector("#schema-done")
    assert console.get("admin", f"/api/schemas/local/{subject}").json()["versions"] == [1]
    assert page.problems == []

    with console.engine.connect() as connection:
        actions = [
            (row.action, row.actor)
            for row in connection.execute(
                select(audit_table.c.action, audit_table.c.actor)
                .where(audit_table.c.target == f"local/{subject}")
                .order_by(audit_table.c.id)
            )
        ]
    assert actions == [("schema.compatibility", "ada"), ("schema.register", "ada"),
                       ("schema.delete_version", "ada")]  # fmt: skip


def test_the_clusters_page_says_whether_the_registry_answers(console: RegistryConsole) -> None:
    [cluster] = console.get("viewer", "/api/clusters").json()["clusters"]
    assert cluster["schema_registry"] == {
        "url": console.registry_url, "reachable": True, "error": None,
    }  # fmt: skip


def test_a_subject_holding_slashes_is_shown_checked_and_deleted(console: RegistryConsole) -> None:
    """Protobuf imports are registered under file names: google/type/money.proto."""
    subject = f"{console.topics['subjects']}/imports/money.proto"
    proto = 'syntax = "proto3";\npackage shop.money;\nmessage Money { int64 units = 1; }\n'
    base = f"/api/schemas/local/{subject}"
    created = console.call("admin", "POST", f"{base}/versions",
                           json={"schema": proto, "schema_type": "PROTOBUF"})  # fmt: skip
    assert created.status_code == 201, created.text
    detail = console.get("viewer", base).json()
    assert (detail["subject"], detail["versions"]) == (subject, [1])
    checked = console.call("viewer", "POST", f"{base}/compatibility",
                           json={"schema": proto, "schema_type": "PROTOBUF"})  # fmt: skip
    assert checked.status_code == 200 and checked.json()["is_compatible"] is True
    page = console.get("viewer", f"/schemas/local/{subject}")
    assert page.status_code == 200 and "message Money" in page.text
    assert console.call("admin", "DELETE", f"{base}/versions/1").json() == {"deleted": 1}
    assert console.get("viewer", base).status_code == 404


@pytest.mark.browser
async def test_an_avro_record_is_produced_again_with_an_edit_and_by_the_api(
    console: RegistryConsole, kafka_bootstrap: str, page
) -> None:
    topic = console.topics["produce"]
    await avro_records(console, kafka_bootstrap, topic)
    document = {**json.loads(json.dumps(order(f"corr-{topic}-api"), default=str)),
                "amount": "12.34", "placedAt": "2026-12-02T08:00:00Z"}  # fmt: skip
    body = {"topic": topic, "key": "order-api", "value": json.dumps(document),
            "subject": f"{topic}-value"}  # fmt: skip
    assert console.call("viewer", "POST", "/api/produce", json=body).status_code == 403
    sent = console.call("operator", "POST", "/api/produce", json=body)
    assert sent.status_code == 201, sent.text
    assert (sent.json()["partition"], sent.json()["offset"]) == (0, 1)
    bad = console.call("operator", "POST", "/api/produce", json={**body, "value": '{"x": 1}'})
    assert bad.status_code == 400 and "does not match schema" in bad.json()["error"]

    await login(page, console.url, "oli", PASSWORD)
    await page.goto(f"{console.url}/events/local/{topic}/0/0")
    await page.locator("#event-reproduce").click()
    await page.wait_for_url("**/produce?**")
    value = page.locator("#produce-value")
    assert '"amount": "79.90"' in await value.input_value()
    assert await page.locator("#produce-subject").input_value() == f"{topic}-value"
    await value.fill((await value.input_value()).replace('"79.90"', '"80.00"'))
    await page.locator("#produce-send").click()
    await page.locator("#produce-done").wait_for()
    assert "offset 2" in await page.locator("#produce-done").inner_text()

    events = await indexed(console, topic, 3)
    decoded = {}
    for offset in (1, 2):
        detail = console.get("viewer", f"/api/events/local/{topic}/0/{offset}").json()
        assert detail["decode_state"] == "decoded", detail
        decoded[offset] = detail["decoded_value"]
    assert decoded[1]["amount"] == "12.34" and decoded[2]["amount"] == "80.00"
    assert (
        decoded[2]["metadata"]
        == console.get("viewer", f"/api/events/local/{topic}/0/0").json()["decoded_value"][
            "metadata"
        ]
    )
    assert len(events) == 3
    produced = console.get("admin", "/api/audit", action="record.produce").json()["entries"]
    assert {e["detail"]["offset"] for e in produced if e["target"] == f"local/{topic}"} == {1, 2}
    assert all("value" not in e["detail"] for e in produced)
