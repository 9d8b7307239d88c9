"""The JSON twin that deletes a group's offsets for one topic, against the real broker: the
answer per partition, the audit row with the offsets before and after, and every refusal
in words (a member reading the topic, an unknown group or cluster, a topic without
offsets, a confirmation that does not match, a bad topic name)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from aiokafka import TopicPartition

from console.app import create_app
from tests.conftest import make_settings, role_tokens, serve_in_thread
from tests.console.operations.test_group_offsets import committed, group_at
from tests.console.views.test_actions import csrf_headers
from tests.kafka_helpers import create_topic, joined_consumer

pytestmark = [pytest.mark.kafka]


def url_of(group: str, cluster: str = "local") -> str:
    return f"/api/clusters/{cluster}/groups/{quote(group, safe='')}/offsets/delete"


async def test_the_json_twin_deletes_a_topics_offsets_and_refuses_in_words(
    live_server, kafka_cluster, unique_topic
) -> None:
    topic = unique_topic
    await create_topic(kafka_cluster.bootstrap, topic, partitions=2)
    group = await group_at(kafka_cluster.bootstrap, topic, {0: 5, 1: 6})
    body = {"topic": topic, "confirm": topic}
    async with httpx.AsyncClient(base_url=live_server.url, timeout=20,
                                 headers=csrf_headers(live_server.url)) as client:  # fmt: skip
        for wrong, status, words in (
            ({"confirm": "x"}, 400, f"type the topic's name, {topic}"),
            ({"topic": "a b", "confirm": "a b"}, 400, "topic: 1 to 249"),
            ({"topic": "t-none", "confirm": "t-none"}, 404,
             f"no committed offsets for topic 't-none' (it has offsets for {topic})"),
        ):  # fmt: skip
            answer = await client.post(url_of(group), json={**body, **wrong})
            assert answer.status_code == status and words in answer.json()["error"], wrong
        missing = await client.post(url_of(f"g-none-{uuid.uuid4().hex[:8]}"), json=body)
        assert missing.status_code == 404 and "no consumer group" in missing.json()["error"]
        elsewhere = await client.post(url_of(group, "nope"), json=body)
        assert elsewhere.status_code == 404 and "no cluster 'nope'" in elsewhere.json()["error"]

        consumer = await joined_consumer(kafka_cluster.bootstrap, topic, group)
        try:
            refused = await client.post(url_of(group), json=body)
            assert refused.status_code == 400
            assert consumer._coordinator.member_id in refused.json()["error"]
            assert "subscribed to topic " + topic in refused.json()["error"]
            await consumer.commit({TopicPartition(topic, 0): 7})
        finally:
            await consumer.stop()

        done = await client.post(url_of(group), json=body)
        assert done.status_code == 200, done.text
        assert done.json()["deleted"] == 2 and done.json()["error"] is None
        assert [(p["partition"], p["before"], p["after"]) for p in done.json()["partitions"]] == [
            (0, 7, None), (1, 6, None),
        ]  # fmt: skip
        assert await committed(kafka_cluster, group) == {}
        entries = (await client.get("/api/audit", params={"action": "group.offsets"})).json()
        mine = [e for e in entries["entries"] if e["target"] == f"local/{group}"]
        assert [e["action"] for e in mine] == ["group.offsets.delete"]
        assert mine[0]["detail"]["partitions"][0] == {
            "partition": 0, "before": 7, "after": None, "error": None,
        }  # fmt: skip


def test_viewers_see_the_brokers_and_only_operators_delete_offsets(kafka_cluster, tmp_path) -> None:
    settings = make_settings(kafka_cluster, f"sqlite:///{tmp_path / 'index.db'}",
                             server={"auth": "on"})  # fmt: skip
    app = create_app(settings, mode="console")
    body = {"topic": "t-x", "confirm": "t-x"}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        tokens = role_tokens(app.state.eventscope.engine)

        def as_role(role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens[role]}"}

        assert client.get("/api/clusters/local/brokers").status_code == 401
        assert (
            client.get("/api/clusters/local/brokers", headers=as_role("viewer")).status_code == 200
        )
        refused = client.post(url_of("g-x"), json=body, headers=as_role("viewer"))
        assert refused.status_code == 403
        allowed = client.post(url_of(f"g-none-{uuid.uuid4().hex[:8]}"), json=body,
                              headers=as_role("operator"))  # fmt: skip
        assert allowed.status_code == 404  # past the role check: no such group
