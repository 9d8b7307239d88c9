"""The learned event catalog against the real broker: CloudEvents produced on two topics
become types with their topics, producers and consumers; a type's shape comes from its
samples and its example is masked; the AsyncAPI export validates against AsyncAPI 3.0's
own JSON Schema (from the npm registry); the pages in the browser."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
from aiokafka import TopicPartition

from collectors.config import settings_from_mapping
from collectors.index.engine import create_index_engine
from console import asyncapi, catalog_shapes
from console.alerts.rules import rule_from_mapping
from console.alerts.sources import Probes, samples
from console.app import create_app
from tests.asyncapi_spec import asyncapi_3_schema
from tests.conftest import LiveServer, serve_in_thread
from tests.kafka_helpers import create_topic, joined_consumer, produce

pytestmark = pytest.mark.kafka

# --- pure logic -------------------------------------------------------------------------


def test_a_shape_is_what_every_sample_satisfies() -> None:
    samples = [{"id": 1, "items": [{"sku": "a", "qty": 2}], "note": None},
               {"id": 2, "items": [], "note": "gift", "coupon": "X"}]  # fmt: skip
    schema = catalog_shapes.json_schema(samples)
    assert schema["type"] == "object" and schema["required"] == ["id", "items", "note"]
    assert schema["properties"]["note"]["type"] == ["null", "string"]
    assert schema["properties"]["items"]["items"]["properties"]["qty"] == {"type": "integer"}
    assert ("$.items[].sku", "string") in catalog_shapes.paths(samples)
    assert catalog_shapes.json_schema([]) == {}
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["x"] = {}
        node = node["x"]
    assert len(catalog_shapes.paths([deep])) <= catalog_shapes.MAX_DEPTH + 1
    wide = {f"k{i}": i for i in range(500)}
    cut = catalog_shapes.json_schema([wide])
    assert len(cut["properties"]) == catalog_shapes.MAX_PROPERTIES
    assert cut["additionalProperties"] is True


def test_the_asyncapi_document_validates_and_its_keys_are_safe() -> None:
    messages = [
        asyncapi.CatalogMessage("com.shop/Order Placed", ("shop.orders",), ("orders svc",),
                                catalog_shapes.json_schema([{"id": 1}]), {"id": 1}),
        asyncapi.CatalogMessage("com.shop:Order+Placed", ("shop.orders", "a/b"), (),
                                {}, None),
    ]  # fmt: skip
    document = asyncapi.document("prod east", "k1:9092,k2:9092", messages, "2026-12-04")
    errors = list(jsonschema_rs.validator_for(asyncapi_3_schema()).iter_errors(document))
    assert errors == []
    keys = list(document["components"]["messages"])
    assert keys == ["com.shop_Order_Placed", "com.shop_Order_Placed_2"]
    assert document["servers"] == {"prod_east": {"host": "k1:9092", "protocol": "kafka"}}
    assert {c["address"] for c in document["channels"].values()} == {"shop.orders", "a/b"}


# --- against the broker -----------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_server(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    index = f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'index.db'}"
    settings = settings_from_mapping({
        "index": {"url": index}, "server": {"auth": "off"},
        "clusters": {"local": {"bootstrap": kafka_bootstrap}},
        "collector": {"group_id": f"eventscope-catalog-{uuid.uuid4().hex[:8]}"},
        "masking": {"apply_to": "everyone", "rules": [{"json_path": "$.card"}]},
    })  # fmt: skip
    engine = create_index_engine(index)
    with serve_in_thread(create_app(settings, mode="all", engine=engine)) as url:
        yield LiveServer(url, settings, engine)


def cloud_event(event_type: str, source: str, body: dict) -> tuple[bytes, bytes, list]:
    headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()),
               ("ce_type", event_type.encode()), ("ce_source", source.encode()),
               ("content-type", b"application/json")]  # fmt: skip
    return b"k", json.dumps(body).encode(), headers


async def wait_for_type(url: str, event_type: str, records: int) -> dict:
    deadline = time.monotonic() + 40
    async with httpx.AsyncClient(base_url=url, timeout=20) as client:
        while True:
            found = (await client.get("/api/catalog", params={"q": event_type})).json()
            for entry in found["types"]:
                if entry["event_type"] == event_type and entry["records"] >= records:
                    return entry
            assert time.monotonic() < deadline, f"{event_type} never listed: {found}"
            await asyncio.sleep(0.5)


async def test_types_are_learned_with_topics_producers_consumers_and_shape(
    catalog_server: LiveServer, kafka_bootstrap: str
) -> None:
    base = f"t-catalog-{uuid.uuid4().hex[:8]}"
    orders, archive = f"{base}.orders", f"{base}.archive"
    kind = f"com.example.{base}.OrderPlaced"
    for topic in (orders, archive):
        await create_topic(kafka_bootstrap, topic)
    consumer = await joined_consumer(kafka_bootstrap, orders, f"{base}-billing")
    try:
        await produce(kafka_bootstrap, archive, [cloud_event(kind, "archiver", {"id": 9})])
        await produce(kafka_bootstrap, orders, [
            cloud_event(kind, "checkout", {"id": n, "card": "4111 1111 1111 1111",
                                           "lines": [{"sku": "a", "qty": n}]}) for n in range(3)
        ])  # fmt: skip
        await produce(kafka_bootstrap, orders, [(b"k", b"not an event", [])])
        await consumer.commit({TopicPartition(orders, 0): 2})  # the lag sampler lists it
        entry = await wait_for_type(catalog_server.url, kind, 4)
        assert [t["name"] for t in entry["topics"]] == [orders, archive]
        assert {p["name"]: p["records"] for p in entry["producers"]} == {
            "checkout": 3,
            "archiver": 1,
        }
        deadline = time.monotonic() + 30  # the lag sampler sees the group
        while f"group {base}-billing" not in entry["consumers"]:
            assert time.monotonic() < deadline, entry
            await asyncio.sleep(1)
            entry = await wait_for_type(catalog_server.url, kind, 4)
    finally:
        await consumer.stop()
    async with httpx.AsyncClient(base_url=catalog_server.url, timeout=20) as client:
        detail = (await client.get(f"/api/catalog/local/{kind}")).json()
        paths = {s["path"]: s["types"] for s in detail["shape"]}
        assert paths["$.id"] == "integer" and paths["$.lines[].qty"] == "integer"
        assert detail["samples"] == 4 and detail["example"]["card"] == "***"
        assert "4111" not in json.dumps(detail)
        assert detail["schema"]["required"] == ["id"]  # the archive's sample has no lines
        assert (await client.get("/api/catalog/local/NoSuchType")).status_code == 404
        assert (await client.get("/api/catalog", params={"window": "0"})).status_code == 400
        assert (await client.get("/api/catalog", params={"cluster": "x"})).status_code == 404
        exported = await client.get("/api/asyncapi/local", params={"window": "60"})
        assert "attachment" in exported.headers["content-disposition"]
        document = exported.json()
    assert list(jsonschema_rs.validator_for(asyncapi_3_schema()).iter_errors(document)) == []
    channel = next(c for c in document["channels"].values() if c["address"] == orders)
    message = next(iter(channel["messages"].values()))["$ref"].rsplit("/", 1)[1]
    assert document["components"]["messages"][message]["name"] == kind
    # other tests' types share the broker: only this type's example is checked
    assert "4111" not in json.dumps(document["components"]["messages"][message])


@pytest.mark.browser
async def test_the_catalog_pages_in_the_browser(
    catalog_server: LiveServer, kafka_bootstrap: str, page, tmp_path: Path
) -> None:
    base = f"t-catalog-ui-{uuid.uuid4().hex[:8]}"
    kind = f"{base}.<b>Shipped</b>"  # hostile names are shown as text
    await create_topic(kafka_bootstrap, base)
    await produce(kafka_bootstrap, base, [cloud_event(kind, "shipping", {"parcel": "p1"})])
    await wait_for_type(catalog_server.url, kind, 1)
    await page.goto(f"{catalog_server.url}/catalog?q={base}")
    row = page.locator("#catalog tbody tr")
    assert await row.count() == 1 and kind in await row.inner_text()
    await row.locator("a").first.click()
    await page.wait_for_url("**/catalog/local/**")
    assert "$.parcel" in await page.locator("#type-shape").inner_text()
    assert '"parcel": "p1"' in await page.locator("#type-example").inner_text()
    assert await page.locator("b", has_text="Shipped").count() == 0
    await page.locator("#type-records").click()
    await page.wait_for_url("**/events?**")
    assert page.problems == []


def test_shape_drift_is_found_with_the_record_that_showed_it() -> None:
    samples = [(n, {"id": n, "old": {"x": 1}}) for n in range(5)]
    samples += [(n, {"id": str(n), "extra": [1]}) for n in range(5, 30)]
    found = catalog_shapes.drift(samples)
    assert [(c["change"], c["path"], c["at"]) for c in found] == [
        ("added", "$.extra", 5), ("type", "$.id", 5), ("removed", "$.old", 4)]  # fmt: skip
    steady = [(n, {"id": n}) for n in range(30)]
    assert catalog_shapes.drift(steady) == [] and catalog_shapes.drift(samples[:1]) == []


async def test_a_changed_shape_is_reported_on_the_type(
    catalog_server: LiveServer, kafka_bootstrap: str
) -> None:
    base = f"t-catalog-drift-{uuid.uuid4().hex[:8]}"
    kind = f"{base}.Priced"
    await create_topic(kafka_bootstrap, base)
    await produce(kafka_bootstrap, base, [cloud_event(kind, "pricing", {"price": n})
                                          for n in range(3)])  # fmt: skip
    changed = cloud_event(kind, "pricing", {"price": "9.90", "currency": "EUR"})
    await produce(kafka_bootstrap, base, [changed])
    await wait_for_type(catalog_server.url, kind, 4)
    async with httpx.AsyncClient(base_url=catalog_server.url, timeout=20) as client:
        detail = (await client.get(f"/api/catalog/local/{kind}")).json()
    changes = {(c["change"], c["path"]): c for c in detail["shape_changes"]}
    assert set(changes) == {("added", "$.currency"), ("type", "$.price")}
    assert changes[("type", "$.price")]["was"] == "integer"
    assert changes[("type", "$.price")]["link"].endswith(f"/{base}/0/3")
    rule = rule_from_mapping({"name": "ShapeDrift", "kind": "shape_drift", "topic": base,
                              "window": "10m"})  # fmt: skip
    with catalog_server.engine.connect() as connection:
        fired = samples(connection, rule, int(time.time() * 1000), Probes())
    assert [dict(f.labels) for f in fired] == [{"cluster": "local", "event_type": kind}]
    assert "added $.currency" in fired[0].description and fired[0].value == 2
