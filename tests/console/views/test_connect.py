"""The Kafka Connect pages and their JSON twins against a real worker: a failed task
restarted from its page, a config edit refused by Connect's validation then accepted,
roles (viewers look, operators restart, admins edit and delete), audit rows, and the way
back from a dead letter to the connector that wrote it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from collectors.config import settings_from_mapping
from collectors.index.engine import create_index_engine
from console.app import create_app
from console.views.dlq import connect_source
from tests.conftest import LiveServer, role_tokens, serve_in_thread
from tests.console.views.test_actions import csrf_headers
from tests.kafka_helpers import create_topic

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def connect_server(
    kafka_bootstrap: str, connect_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    index = f"sqlite:///{tmp_path_factory.mktemp('connect-ui') / 'index.db'}"
    settings = settings_from_mapping({
        "index": {"url": index}, "server": {"auth": "off"},
        "clusters": {"local": {"bootstrap": kafka_bootstrap,
                               "connect": [{"name": "main", "url": connect_url}]}},
    })  # fmt: skip
    engine = create_index_engine(index)
    with serve_in_thread(create_app(settings, mode="console", engine=engine)) as url:
        yield LiveServer(url, settings, engine)


def create_sink(client: httpx.Client, name: str, topic: str, file: Path) -> None:
    config = {"connector.class": "FileStreamSink", "topics": topic, "file": str(file),
              "db.password": "hunter2"}  # fmt: skip
    made = client.post("/api/connect/local/main/config",
                       json={"connector": name, "config": config, "create": True})  # fmt: skip
    assert made.status_code == 201, made.text


def wait_for_task(client: httpx.Client, name: str, state: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        answer = client.get(f"/api/connect/local/main/connectors/{name}")
        if answer.status_code == 200:
            tasks = answer.json()["connector"]["tasks"]
            if tasks and all(task["state"] == state for task in tasks):
                return answer.json()
        assert time.monotonic() < deadline, f"{name}'s tasks never {state}: {answer.text}"
        time.sleep(0.5)


@pytest.mark.browser
async def test_a_failed_task_is_restarted_from_its_page(connect_server, page, tmp_path) -> None:
    name, topic = f"ui-sink-{uuid.uuid4().hex[:8]}", f"t-connect-ui-{uuid.uuid4().hex[:8]}"
    await create_topic(connect_server.settings.clusters[0].bootstrap, topic)
    out = tmp_path / "later" / "out.txt"
    with httpx.Client(base_url=connect_server.url, headers=csrf_headers(connect_server.url),
                      timeout=20) as client:  # fmt: skip
        create_sink(client, name, topic, out)
        await asyncio.to_thread(wait_for_task, client, name, "FAILED")
    await page.goto(f"{connect_server.url}/connect?state=attention")
    row = page.locator(f"tr[data-connector='{name}']")
    assert "FAILED" in await row.inner_text()
    await row.locator("a").first.click()
    await page.wait_for_url(f"**/connectors/{name}")
    assert "Couldn't find or create file" in await page.locator("#task-trace-0").inner_text()
    assert "hunter2" not in await page.content()
    out.parent.mkdir()  # what the on-call engineer fixed
    await page.locator("#restart-failed").click()
    await page.wait_for_url(f"**/connectors/{name}")
    deadline = time.monotonic() + 60
    while "RUNNING" not in await page.locator("#task-0").inner_text():
        assert time.monotonic() < deadline, "the task never ran again"
        await asyncio.sleep(1)
        await page.reload()
    assert await page.locator("#task-trace-0").count() == 0
    # The config: Connect's validation refuses an edit, says why, and changes nothing.
    await page.locator("#edit-config").click()
    text = await page.locator("#connector-config-text").input_value()
    assert '"db.password": "[hidden]"' in text and "hunter2" not in text
    without_topics = {k: v for k, v in json.loads(text).items() if k != "topics"}
    await page.locator("#connector-config-text").fill(json.dumps(without_topics))
    await page.locator("#connector-config-save").click()
    assert "Must configure one of topics" in await page.locator("#config-errors").inner_text()
    await page.locator("#connector-config-text").fill(text.replace("out.txt", "other.txt"))
    await page.locator("#connector-config-save").click()
    await page.wait_for_url(f"**/connectors/{name}")
    assert "other.txt" in await page.locator("#connector-config").inner_text()
    await page.locator("#delete-connector-form input[name=confirm]").fill(name)
    await page.locator("#delete-connector").click()
    await page.wait_for_url("**/connect?cluster=local")
    assert name not in await page.content()
    page.problems[:] = [p for p in page.problems if "status of 400" not in p]  # the refusal
    assert page.problems == []


def test_the_json_twins_refuse_what_cannot_work(connect_server, tmp_path) -> None:
    name, topic = f"api-sink-{uuid.uuid4().hex[:8]}", f"t-connect-api-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(connect_server.settings.clusters[0].bootstrap, topic))
    with httpx.Client(base_url=connect_server.url, headers=csrf_headers(connect_server.url),
                      timeout=20) as client:  # fmt: skip
        create_sink(client, name, topic, tmp_path / "o.txt")
        wait_for_task(client, name, "RUNNING")
        listed = client.get("/api/connect", params={"q": name}).json()["clusters"][0]
        assert [c["name"] for c in listed["connect"][0]["connectors"]] == [name]
        # The topology map draws the sink as a service reading its topic through its group.
        topology = client.get("/api/topology").json()
        node = next(n for n in topology["nodes"] if n["id"] == f"service:{name}")
        assert node["url"] == f"/connect/local/main/connectors/{name}"
        edges = {(e["source"], e["target"]) for e in topology["edges"]}
        assert {(f"topic:{topic}", f"group:connect-{name}"),
                (f"group:connect-{name}", f"service:{name}")} <= edges  # fmt: skip
        assert "hunter2" not in client.get(f"/api/connect/local/main/connectors/{name}").text
        paused = client.post("/api/connect/local/main/action",
                             json={"connector": name, "action": "pause"})  # fmt: skip
        assert paused.status_code == 200 and paused.json()["before"]["state"] == "RUNNING"
        for body, status in (
            ({"connector": name, "action": "explode"}, 400),
            ({"connector": name, "action": "restart-task", "task": 9}, 400),
            ({"connector": "ghost", "action": "pause"}, 404),
            ({"connector": name, "action": "delete"}, 400),  # its own route, for admins
        ):
            answer = client.post("/api/connect/local/main/action", json=body)
            assert answer.status_code == status, (body, answer.text)
        assert (
            client.post(
                "/api/connect/local/other/action", json={"connector": name, "action": "pause"}
            ).status_code
            == 404
        )
        assert client.get("/api/connect/nowhere/main/plugins").status_code == 404
        plugins = client.get("/api/connect/local/main/plugins").json()["plugins"]
        assert {p["type"] for p in plugins} == {"sink", "source"}
        refused = client.post("/api/connect/local/main/delete",
                              json={"connector": name, "confirm": "not-it"})  # fmt: skip
        assert refused.status_code == 400 and "type the connector's name" in refused.text
        deleted = client.post("/api/connect/local/main/delete",
                              json={"connector": name, "confirm": name})  # fmt: skip
        assert deleted.status_code == 200 and deleted.json()["after"] is None
        actions = [e["action"] for e in
                   client.get("/api/audit", params={"action": "connector"}).json()["entries"]
                   if name in e["target"]]  # fmt: skip
        assert actions == ["connector.delete", "connector.pause", "connector.create"]


def test_roles_viewers_look_operators_restart_admins_change(
    kafka_bootstrap: str, connect_url: str, tmp_path: Path
) -> None:
    index = f"sqlite:///{tmp_path / 'index.db'}"
    settings = settings_from_mapping({
        "index": {"url": index}, "server": {"auth": "on"},
        "clusters": {"local": {"bootstrap": kafka_bootstrap,
                               "connect": [{"name": "main", "url": connect_url}]}},
    })  # fmt: skip
    engine = create_index_engine(index)
    app = create_app(settings, mode="console", engine=engine)
    with serve_in_thread(app) as url:
        tokens = role_tokens(engine)

        def as_role(role: str, path: str, body: dict) -> int:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            return httpx.post(url + path, json=body, headers=headers, timeout=20).status_code

        ghost = {"connector": "ghost", "action": "pause"}
        assert as_role("viewer", "/api/connect/local/main/action", ghost) == 403
        assert as_role("operator", "/api/connect/local/main/action", ghost) == 404
        gone = {"connector": "ghost", "confirm": "ghost"}
        assert as_role("operator", "/api/connect/local/main/delete", gone) == 403
        assert as_role("admin", "/api/connect/local/main/delete", gone) == 404
        config = {"connector": "ghost", "config": {"connector.class": "FileStreamSink"}}
        assert as_role("operator", "/api/connect/local/main/config", config) == 403


def test_a_dead_letters_headers_lead_back_to_its_connector() -> None:
    headers = ('[["__connect.errors.connector.name", "orders-sink"], '
               '["__connect.errors.task.id", "2"], ["other", null]]')  # fmt: skip
    found = connect_source("prod", headers)
    assert found == {"connector": "orders-sink", "task": 2,
                     "link": "/connect?cluster=prod&q=orders-sink"}  # fmt: skip
    assert connect_source("prod", '[["kafka_dlt-exception-message", "x"]]') is None
    assert connect_source("prod", "not json") is None
