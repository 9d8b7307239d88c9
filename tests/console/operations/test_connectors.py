"""Kafka Connect against a real distributed worker (the file connectors): a task that fails
shows its trace and runs again once restarted; pause, resume and stop change its state;
Connect's own validation refuses a bad config and nothing changes; secrets never leave;
a dead-lettered record carries the `__connect.errors.*` headers that link it back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from collectors.config import ClusterConfig, ConnectConfig
from console.alerts.rules import rule_from_mapping
from console.alerts.sources import Probes, samples
from console.operations import connectors
from console.operations.connect_client import ConnectClient, ConnectError
from console.operations.connectors import HIDDEN, ConfigRefused
from console.operations.fields import PlanError
from tests.kafka_helpers import create_topic, produce

pytestmark = pytest.mark.kafka


# --- pure logic -------------------------------------------------------------------------


def test_a_row_is_built_from_connects_info_and_status() -> None:
    info = {"type": "sink", "config": {"connector.class": "FileStreamSink", "topics": "a, b",
                                       "errors.deadletterqueue.topic.name": "a-dlq"}}  # fmt: skip
    status = {"connector": {"state": "RUNNING", "worker_id": "w1:8083"},
              "tasks": [{"id": 1, "state": "FAILED", "worker_id": "w2", "trace": "boom"},
                        {"id": 0, "state": "RUNNING", "worker_id": "w1"}, {"id": "x"}]}  # fmt: skip
    row = connectors.connector_row("main", "sink-1", info, status)
    assert [t["id"] for t in row["tasks"]] == [0, 1] and row["failed_tasks"] == 1
    assert row["tasks"][1]["trace"] == "boom" and row["topics"] == ["a", "b"]
    assert row["dlq_topic"] == "a-dlq" and connectors.needs_attention(row)
    odd = connectors.connector_row("main", "x", {}, {"connector": {"state": "EXPLODED"}})
    assert odd["state"] == "UNASSIGNED" and odd["tasks"] == [] and odd["type"] == "unknown"
    assert connectors.config_topics({"topics.regex": "orders-.*"}) == ["/orders-.*/"]


def test_secrets_are_hidden_and_kept_when_a_config_comes_back() -> None:
    current = {"connector.class": "X", "connection.password": "p4ss", "key.converter": "K",
               "aws.secret.access.key": "s", "sasl.jaas.config": "j"}  # fmt: skip
    shown = connectors.masked(current)
    assert shown["connection.password"] == shown["aws.secret.access.key"] == HIDDEN
    assert shown["sasl.jaas.config"] == HIDDEN and shown["key.converter"] == "K"
    back = connectors.parse_config(json.dumps(shown), "c", current)
    assert back["connection.password"] == "p4ss" and back["name"] == "c"
    with pytest.raises(PlanError, match="hidden but has no current value"):
        connectors.parse_config({"connector.class": "X", "new.password": HIDDEN}, "c", current)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        ({"connector.class": "X", "name": "other"}, "not the connector's"),
        ({"topics": "a"}, "connector.class"),
        ({"connector.class": {"nested": 1}}, "text, number or boolean"),
    ],
)
def test_a_bad_config_is_refused_in_words(given: Any, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        connectors.parse_config(given, "c", None)


def test_numbers_and_booleans_become_connects_texts() -> None:
    config = connectors.parse_config({"connector.class": "X", "tasks.max": 2, "a": True}, "c", None)
    assert config == {"connector.class": "X", "tasks.max": "2", "a": "true", "name": "c"}


def test_validation_errors_are_read_per_key() -> None:
    answer = {"error_count": 1, "configs": [
        {"value": {"name": "topics", "errors": ["Must configure one of topics"]}},
        {"value": {"name": "file", "errors": []}}, "junk"]}  # fmt: skip
    assert connectors.validation_errors(answer) == {"topics": ["Must configure one of topics"]}
    assert connectors.validation_errors({"error_count": 0, "configs": []}) == {}


def test_connector_names_that_cannot_be_addressed_are_refused() -> None:
    for bad in ("", "a/b", "tab\there", "x" * 201):
        with pytest.raises(PlanError, match="name:"):
            connectors.connector_name(bad)
    assert connectors.connector_name("  orders-sink.v2 ") == "orders-sink.v2"


async def test_a_read_waits_out_a_rebalance_and_an_action_is_never_repeated() -> None:
    """Connect's own answers while a worker rebalances (a 500 'a rebalance is expected', a
    409), replayed in order: a read is asked again, an action is not."""
    answers = {
        "GET": [(500, "Request cannot be completed because a rebalance is expected"),
                (409, "Cannot complete request momentarily due to no known leader URL, "
                      "likely because a rebalance was underway."),
                (200, "")],
        "PUT": [(409, "Cannot complete request because of a conflicting operation")],
    }  # fmt: skip
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.method)
        status, message = answers[request.method].pop(0)
        if status == 200:
            return httpx.Response(200, json={"name": "c", "config": {}, "tasks": []})
        return httpx.Response(status, json={"error_code": status, "message": message})

    config = ConnectConfig(name="main", url="http://connect.invalid")
    async with ConnectClient(config, transport=httpx.MockTransport(answer)) as client:
        assert (await client.info("c"))["name"] == "c"
        with pytest.raises(ConnectError) as refused:
            await client.pause("c")
    assert refused.value.status == 409 and asked == ["GET", "GET", "GET", "PUT"]


# --- a real worker ----------------------------------------------------------------------


@pytest.fixture
def connect_cluster(kafka_bootstrap: str, connect_url: str) -> ClusterConfig:
    return ClusterConfig(name="local", bootstrap=kafka_bootstrap,
                         connect=(ConnectConfig(name="main", url=connect_url),))  # fmt: skip


def sink_config(topic: str, file: Path, **extra: str) -> dict[str, str]:
    return {"connector.class": "FileStreamSink", "topics": topic, "file": str(file),
            "connection.password": "do-not-show", **extra}  # fmt: skip


async def wait_state(cluster: ClusterConfig, name: str, wanted: str, *, task: bool = False,
                     timeout_s: float = 60) -> connectors.ConnectorJson:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            row = (await connectors.connector_detail(cluster, "main", name))["connector"]
        except ConnectError:  # just created: no status yet
            row = None
        if row is not None:
            states = [t["state"] for t in row["tasks"]] if task else [row["state"]]
            if states and all(state == wanted for state in states):
                return row
        assert time.monotonic() < deadline, f"{name} never became {wanted}: {row}"
        await asyncio.sleep(0.5)


async def test_a_failed_task_shows_its_trace_and_runs_once_restarted(
    connect_cluster: ClusterConfig, tmp_path: Path
) -> None:
    name, topic = f"sink-{uuid.uuid4().hex[:8]}", f"t-connect-{uuid.uuid4().hex[:8]}"
    await create_topic(connect_cluster.bootstrap, topic)
    out = tmp_path / "missing-dir" / "out.txt"
    await connectors.change_config(connect_cluster, "main", name, sink_config(topic, out),
                                   create=True)  # fmt: skip
    failed = await wait_state(connect_cluster, name, "FAILED", task=True)
    assert failed["failed_tasks"] == 1 and "Couldn't find or create file" in (
        failed["tasks"][0]["trace"] or ""
    )
    listed = await connectors.connect_clusters(connect_cluster)
    row = next(r for r in listed[0]["connectors"] if r["name"] == name)
    assert row["failed_tasks"] == 1 and listed[0]["version"]
    # The connector_failed alert rule sees it, named by cluster, Connect cluster and connector.
    rule = rule_from_mapping({"name": "ConnectorFailed", "kind": "connector_failed",
                              "connector": name})  # fmt: skip
    probes = Probes(connectors={"local": listed})
    found = samples(cast(Any, None), rule, 0, probes)
    assert [dict(s.labels) for s in found] == [
        {"cluster": "local", "connect": "main", "connector": name}
    ]
    assert "1 of 1 tasks" in found[0].description and "Couldn't find" in found[0].description
    assert found[0].path == f"/connect/local/main/connectors/{name}"
    other = rule_from_mapping({"name": "Other", "kind": "connector_failed", "connector": "x-*"})
    assert samples(cast(Any, None), other, 0, probes) == []
    out.parent.mkdir()
    before, after = await connectors.act(connect_cluster, "main", name, "restart-task", 0)
    assert before["tasks"][0]["state"] == "FAILED" and after is not None
    await wait_state(connect_cluster, name, "RUNNING", task=True)
    await produce(connect_cluster.bootstrap, topic, [(None, b'{"n": 1}', [])])
    deadline = time.monotonic() + 30
    while not (out.exists() and "n=1" in out.read_text()):  # the converter's Map, printed
        assert time.monotonic() < deadline, "the restarted task wrote nothing"
        await asyncio.sleep(0.5)
    detail = await connectors.connector_detail(connect_cluster, "main", name)
    assert detail["active_topics"] == [topic]
    assert {e["name"]: e["value"] for e in detail["config"]}["connection.password"] == HIDDEN
    assert "do-not-show" not in json.dumps(detail)
    with pytest.raises(PlanError, match="has tasks"):
        await connectors.act(connect_cluster, "main", name, "restart-task", 7)
    await connectors.act(connect_cluster, "main", name, "delete")


async def act_when_settled(cluster: ClusterConfig, name: str, action: str) -> None:
    """Connect answers 409 while its workers rebalance (a stop or a new connector starts
    one): what a user sees, and retries."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await connectors.act(cluster, "main", name, action)
            return
        except ConnectError as exc:
            if exc.status != 409 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def test_pause_resume_and_stop_change_the_state(
    connect_cluster: ClusterConfig, tmp_path: Path
) -> None:
    name, topic = f"sink-{uuid.uuid4().hex[:8]}", f"t-connect-{uuid.uuid4().hex[:8]}"
    await create_topic(connect_cluster.bootstrap, topic)
    await connectors.change_config(connect_cluster, "main", name,
                                   sink_config(topic, tmp_path / "o.txt"), create=True)  # fmt: skip
    await wait_state(connect_cluster, name, "RUNNING", task=True)
    for action, state in (("pause", "PAUSED"), ("resume", "RUNNING"), ("stop", "STOPPED"),
                          ("resume", "RUNNING")):  # fmt: skip
        await act_when_settled(connect_cluster, name, action)
        await wait_state(connect_cluster, name, state)
    before, after = await connectors.act(connect_cluster, "main", name, "delete")
    assert before["name"] == name and after is None
    with pytest.raises(ConnectError) as gone:
        await connectors.connector_detail(connect_cluster, "main", name)
    assert gone.value.status == 404


async def test_connects_validation_refuses_a_bad_config_and_nothing_changes(
    connect_cluster: ClusterConfig, tmp_path: Path
) -> None:
    name, topic = f"sink-{uuid.uuid4().hex[:8]}", f"t-connect-{uuid.uuid4().hex[:8]}"
    await create_topic(connect_cluster.bootstrap, topic)
    good = sink_config(topic, tmp_path / "o.txt")
    await connectors.change_config(connect_cluster, "main", name, good, create=True)
    bad = {k: v for k, v in good.items() if k != "topics"}
    with pytest.raises(ConfigRefused) as refused:
        await connectors.change_config(connect_cluster, "main", name, bad, create=False)
    assert "topics" in refused.value.errors
    with pytest.raises(PlanError, match="exists already"):
        await connectors.change_config(connect_cluster, "main", name, good, create=True)
    with pytest.raises(ConnectError) as unknown:
        unknown_plugin = {"connector.class": "NoSuchPlugin"}
        await connectors.change_config(connect_cluster, "main", f"{name}-x", unknown_plugin,
                                       create=True)  # fmt: skip
    assert unknown.value.status == 400 and "NoSuchPlugin" in unknown.value.message
    async with ConnectClient(connect_cluster.connect[0]) as client:
        kept = (await client.info(name))["config"]
    assert kept["topics"] == topic and kept["connection.password"] == "do-not-show"
    # A hidden secret sent back unchanged keeps its value; an edit lands.
    shown = connectors.masked(kept) | {"file": str(tmp_path / "p.txt")}
    before, _ = await connectors.change_config(connect_cluster, "main", name, shown,
                                               create=False)  # fmt: skip
    assert before is not None and before["connection.password"] == HIDDEN
    async with ConnectClient(connect_cluster.connect[0]) as client:
        kept = (await client.info(name))["config"]
    assert kept["file"].endswith("p.txt") and kept["connection.password"] == "do-not-show"
    await connectors.act(connect_cluster, "main", name, "delete")


async def test_an_unreachable_connect_cluster_is_an_error_not_a_crash() -> None:
    cluster = ClusterConfig(name="x", bootstrap="127.0.0.1:1",
                            connect=(ConnectConfig(name="gone", url="http://127.0.0.1:9",
                                                   timeout_s=2),))  # fmt: skip
    found = await connectors.connect_clusters(cluster)
    assert found[0]["error"] and "unreachable" in found[0]["error"]
    with pytest.raises(PlanError, match="no Kafka Connect cluster 'nope'"):
        await connectors.connector_detail(cluster, "nope", "c")


async def test_a_dead_lettered_record_carries_connects_error_headers(
    connect_cluster: ClusterConfig, tmp_path: Path
) -> None:
    name, topic = f"sink-{uuid.uuid4().hex[:8]}", f"t-connect-{uuid.uuid4().hex[:8]}"
    dlq = f"{topic}-dlq"
    await create_topic(connect_cluster.bootstrap, topic)
    config = sink_config(
        topic, tmp_path / "o.txt", **{
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
        },
    )  # fmt: skip
    await connectors.change_config(connect_cluster, "main", name, config, create=True)
    await wait_state(connect_cluster, name, "RUNNING", task=True)
    await produce(connect_cluster.bootstrap, topic, [(None, b"{not json", [])])
    consumer = AIOKafkaConsumer(dlq, bootstrap_servers=connect_cluster.bootstrap,
                                auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 60)
    finally:
        await consumer.stop()
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["__connect.errors.connector.name"] == name
    assert headers["__connect.errors.task.id"] == "0"
    assert headers["__connect.errors.topic"] == topic
    assert headers["__connect.errors.offset"] == "0"
    row = (await connectors.connector_detail(connect_cluster, "main", name))["connector"]
    assert row["dlq_topic"] == dlq
    await connectors.act(connect_cluster, "main", name, "delete")
