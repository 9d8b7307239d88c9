"""ACLs against a broker that enforces them (StandardAuthorizer, a SASL user): a user
without ACLs is refused, one created through eventscope lets it in, deleting it shuts it
out again; a cluster without an authorizer says so; the JSON twins do the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from collectors.config import ClusterConfig
from collectors.kafka import local_broker
from collectors.kafka.local_broker import LocalBroker
from console.app import create_app
from console.operations import acls
from console.operations.fields import PlanError
from tests.conftest import free_port, make_settings, serve_in_thread
from tests.console.views.test_actions import csrf_headers
from tests.kafka_helpers import create_topic

pytestmark = pytest.mark.kafka
USER, PASSWORD = "alice", "alice-secret"


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        data_dir=tmp_path_factory.mktemp("acl-kafka"), port=free_port(span=3),
        sasl_plain_users=((USER, PASSWORD),), acls=True,
    )  # fmt: skip
    local_broker.start(broker, timeout_s=60, quiet=True)
    try:
        yield broker
    finally:
        local_broker.stop(broker)


async def send_as_alice(broker: LocalBroker, topic: str) -> None:
    assert broker.sasl_bootstrap is not None
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.sasl_bootstrap, security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN", sasl_plain_username=USER, sasl_plain_password=PASSWORD,
        request_timeout_ms=5000,
    )  # fmt: skip
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x")
    finally:
        await producer.stop()


def test_an_acl_is_read_from_a_form_or_a_body_with_clear_errors() -> None:
    acl = acls.parse_acl({"resource_type": "topic", "resource_name": "orders",
                          "principal": "User:alice", "operation": "read"})  # fmt: skip
    assert acl == {"resource_type": "TOPIC", "resource_name": "orders",
                   "pattern_type": "LITERAL", "principal": "User:alice", "host": "*",
                   "operation": "READ", "permission": "ALLOW"}  # fmt: skip
    assert acls.parse_acl({"resource_type": "CLUSTER", "principal": "User:a",
                           "operation": "ALTER"})["resource_name"] == "kafka-cluster"  # fmt: skip
    for bad, field in (({"principal": "alice"}, "principal"), ({"operation": "EAT"}, "operation"),
                       ({"resource_type": "TABLE"}, "resource_type")):  # fmt: skip
        raw = {"resource_type": "TOPIC", "resource_name": "t", "principal": "User:a",
               "operation": "READ", **bad}  # fmt: skip
        with pytest.raises(PlanError, match=f"^{field}:"):
            acls.parse_acl(raw)


async def test_an_acl_lets_a_refused_user_in_and_its_deletion_shuts_it_out(
    acl_broker: LocalBroker,
) -> None:
    cluster = ClusterConfig(name="secured", bootstrap=acl_broker.bootstrap)
    topic = f"t-acl-{uuid.uuid4().hex[:8]}"
    await create_topic(acl_broker.bootstrap, topic)
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as_alice(acl_broker, topic)
    wanted = {"resource_type": "TOPIC", "resource_name": topic, "principal": f"User:{USER}"}
    granted = [acls.parse_acl({**wanted, "operation": op}) for op in ("WRITE", "DESCRIBE")]
    for acl in granted:
        await acls.create_acl(cluster, acl)
    listed = await acls.list_acls(cluster)
    assert sorted(a["operation"] for a in listed if a["resource_name"] == topic) == [
        "DESCRIBE", "WRITE",
    ]  # fmt: skip
    await send_as_alice(acl_broker, topic)  # allowed now
    assert await acls.delete_acl(cluster, granted[0]) == 1
    assert await acls.delete_acl(cluster, granted[0]) == 0  # nothing left to delete
    with pytest.raises(TopicAuthorizationFailedError):
        await send_as_alice(acl_broker, topic)


async def test_a_cluster_without_an_authorizer_says_so(kafka_cluster: ClusterConfig) -> None:
    with pytest.raises(PlanError, match="no authorizer"):
        await acls.list_acls(kafka_cluster)


def test_the_json_twins_list_create_and_delete(acl_broker: LocalBroker, tmp_path) -> None:
    cluster = ClusterConfig(name="secured", bootstrap=acl_broker.bootstrap)
    app = create_app(make_settings(cluster, f"sqlite:///{tmp_path / 'index.db'}"), mode="console")
    acl = {"resource_type": "GROUP", "resource_name": "billing-", "pattern_type": "PREFIXED",
           "principal": "User:bob", "operation": "READ"}  # fmt: skip
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        client.headers.update(csrf_headers(url))
        created = client.post("/api/clusters/secured/acls", json=acl)
        assert created.status_code == 201, created.text
        found = client.get("/api/clusters/secured/acls", params={"principal": "bob"}).json()
        assert [a["resource_name"] for a in found["acls"]] == ["billing-"]
        assert client.post("/api/clusters/secured/acls", json={**acl, "operation": "X"}
                           ).status_code == 400  # fmt: skip
        deleted = client.post("/api/clusters/secured/acls/delete", json=acl)
        assert deleted.status_code == 200 and deleted.json()["deleted"] == 1
        page = client.get("/clusters/secured/acls")
        assert page.status_code == 200 and "billing-" not in page.text
        entries = client.get("/api/audit", params={"action": "acl"}).json()["entries"]
        assert [e["action"] for e in entries] == ["acl.delete", "acl.create"]
