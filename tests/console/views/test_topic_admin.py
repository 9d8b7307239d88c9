"""Topic administration in the browser against the real broker: create (checked first),
edit the overrides, add partitions, delete records, delete the topic; and the JSON twins."""

from __future__ import annotations

import uuid

import httpx
import pytest

from collectors.kafka.admin import admin_client
from console.operations import topics
from tests.console.views.test_actions import csrf_headers
from tests.kafka_helpers import produce

pytestmark = [pytest.mark.kafka]


@pytest.mark.browser
async def test_a_topic_is_created_edited_grown_truncated_and_deleted_in_the_browser(
    live_server, kafka_cluster, page
) -> None:
    name = f"t-ui-admin-{uuid.uuid4().hex[:8]}"
    await page.goto(f"{live_server.url}/clusters/local")
    await page.locator("#new-topic").click()
    await page.locator("#new-topic-name").fill(name)
    await page.locator("textarea[name=configs]").fill("retention.ms=3600000")
    await page.locator("#new-topic-check").click()
    await page.locator("#topic-verdict").wait_for()
    async with admin_client(kafka_cluster) as admin:
        assert name not in await admin.list_topics()
    await page.locator("#new-topic-create").click()
    await page.wait_for_url(f"**/topics/{name}/settings")
    overrides = page.locator("#topic-configs tr.override")
    assert await overrides.count() == 1
    assert "3600000" in await overrides.first.inner_text()

    await page.locator("#configs-text").fill("cleanup.policy=compact,delete\nsegment.ms=60000")
    await page.locator("#configs-save").click()
    await page.wait_for_url(f"**/topics/{name}/settings")
    shown = {c["name"]: c for c in await topics.configs(kafka_cluster, name)}
    assert shown["cleanup.policy"]["value"] == "compact,delete"
    assert shown["segment.ms"]["is_override"]
    assert not shown["retention.ms"]["is_override"]  # removed from the form: back to default

    await page.locator("#partitions-total").fill("4")
    await page.locator("#partitions-add").click()
    await page.wait_for_url(f"**/topics/{name}/settings")
    await produce(kafka_cluster.bootstrap, name, [(b"k%d" % i, b"x", []) for i in range(5)],
                  partition=3)  # fmt: skip
    await page.locator("#truncate-form input[name=partition]").fill("3")
    await page.locator("#truncate-form input[name=before]").fill("2")
    await page.locator("#truncate").click()  # the page asks first; the test's browser says no
    assert page.problems == [f"dialog: Delete these records of {name} for good?"]
    page.problems.clear()
    await page.evaluate("window.confirm = () => true")
    await page.locator("#truncate").click()
    await page.wait_for_url(f"**/topics/{name}/settings")

    audit = httpx.get(f"{live_server.url}/api/audit", params={"q": name}, timeout=10).json()
    actions = [e["action"] for e in audit["entries"]]
    assert actions == ["topic.delete_records", "topic.partitions", "topic.configs", "topic.create"]
    assert audit["entries"][1]["detail"] == {"before": 3, "after": 4}  # the form proposes 3

    await page.locator("#delete-topic-form input[name=confirm]").fill(name)
    await page.locator("#delete-topic").click()
    await page.wait_for_url("**/clusters/local")
    async with admin_client(kafka_cluster) as admin:
        assert name not in await admin.list_topics()
    assert page.problems == []


async def test_the_json_twins_and_kafka_refusals(live_server, kafka_cluster) -> None:
    name = f"t-api-admin-{uuid.uuid4().hex[:8]}"
    base = f"{live_server.url}/api/clusters/local/topics"
    with httpx.Client(headers=csrf_headers(live_server.url), timeout=20) as client:
        check = client.post(base, json={"name": name, "partitions": 2, "validate_only": True})
        assert check.status_code == 200 and check.json()["detail"]["validate_only"] is True
        refused = client.post(base, json={"name": name, "replication_factor": 5})
        assert refused.status_code == 400 and "InvalidReplicationFactor" in refused.json()["error"]
        assert client.post(base, json={"name": "a b"}).status_code == 400
        assert client.post(base, json={"name": name, "partitions": 2}).status_code == 201
        configs = client.post(f"{base}/{name}/configs", json={"configs": {"retention.ms": "1000"}})
        assert configs.status_code == 200, configs.text
        listed = client.get(f"{base}/{name}/configs").json()["configs"]
        assert {"name": "retention.ms", "value": "1000"}.items() <= next(
            c for c in listed if c["name"] == "retention.ms"
        ).items()
        bad = client.post(f"{base}/{name}/configs", json={"configs": {"retention.ms": "soon"}})
        assert bad.status_code == 400 and "Kafka refused" in bad.json()["error"]
        assert client.post(f"{base}/{name}/partitions", json={"total": 1}).status_code == 400
        assert client.delete(f"{base}/{name}").status_code == 200
        assert client.get(f"{base}/{name}/configs").status_code == 404
