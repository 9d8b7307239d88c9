"""Producing by hand: what is checked before sending, what the broker answers, and that
the record arrives exactly as asked (key, value, headers, partition, codec, schema)."""

from __future__ import annotations

import io
import json
import uuid

import fastavro
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from collectors.config import ClusterConfig
from collectors.kafka.admin import admin_client
from collectors.schemas.registry import RegisteredSchema
from collectors.schemas.wire import read_frame
from console.operations.fields import PlanError
from console.operations.produce import encode_value, parse_request, send
from tests.kafka_helpers import create_topic

ORDER = json.dumps({"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "string"}, {"name": "total", "type": "double"}]})  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"topic": "a b"}, "topic: 1 to 249"),
        ({"topic": "t", "partition": "x"}, "partition: a partition number"),
        ({"topic": "t", "compression": "brotli"}, "compression: one of"),
        ({"topic": "t", "headers": "no colon here"}, "line 1 is not 'name: value'"),
        ({"topic": "t", "headers": [{"value": "x"}]}, "a list of"),
        ({"topic": "t", "value_base64": "%%%"}, "not base64"),
        ({"topic": "t", "value": 5}, "value: text"),
        ({"topic": "t", "tombstone": True, "subject": "s"}, "a tombstone has no value"),
        ({"topic": "t", "value": "x" * (8 * 1024 * 1024 + 1)}, "at most 8,388,608"),
    ],
)
def test_bad_requests_say_what_is_wrong(raw: dict, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_request(raw, ["local"])


def test_a_form_and_a_json_body_become_the_same_request() -> None:
    form = parse_request({"topic": "orders", "key": "", "value": "{}", "partition": "2",
                          "headers": "ce_type: OrderPlaced\n\nx-n:  1 "}, ["local"])  # fmt: skip
    headers = [{"name": "ce_type", "value": "OrderPlaced"}, {"name": "x-n", "value_base64": "MQ=="}]
    body = parse_request(
        {"topic": "orders", "key": None, "value": "{}", "partition": 2, "headers": headers},
        ["local"],
    )
    assert form == body
    assert form.key is None and form.headers == (("ce_type", b"OrderPlaced"), ("x-n", b"1"))
    assert parse_request({"topic": "t", "tombstone": "1", "value": "x"}, ["local"]).value is None


def test_avro_values_are_checked_then_framed_in_binary() -> None:
    schema = RegisteredSchema(42, "AVRO", ORDER)
    framed = encode_value(b'{"id": "o-1", "total": 9.5}', schema)
    frame = read_frame(framed)
    assert frame.schema_id == 42
    parsed = fastavro.parse_schema(json.loads(ORDER))
    body = io.BytesIO(framed[frame.body_start :])
    assert fastavro.schemaless_reader(body, parsed) == {"id": "o-1", "total": 9.5}
    with pytest.raises(PlanError, match="does not match schema 42"):
        encode_value(b'{"id": "o-1"}', schema)
    with pytest.raises(PlanError, match="typed as JSON"):
        encode_value(b"not json", schema)


async def read_one(bootstrap: str, topic: str, partition: int, offset: int):  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        return (await consumer.getmany(tp, timeout_ms=5000))[tp][0]
    finally:
        await consumer.stop()


@pytest.mark.kafka
async def test_a_record_arrives_as_asked_and_the_broker_answer_is_returned(
    kafka_cluster: ClusterConfig, unique_topic: str
) -> None:
    await create_topic(kafka_cluster.bootstrap, unique_topic, partitions=3)
    request = parse_request(
        {"topic": unique_topic, "key": "k-1", "value": '{"n": 1}', "partition": "2",
         "compression": "zstd", "headers": "ce_type: OrderPlaced"}, ["local"],
    )  # fmt: skip
    sent = await send(kafka_cluster, request)
    assert (sent["partition"], sent["offset"], sent["schema_id"]) == (2, 0, None)
    record = await read_one(kafka_cluster.bootstrap, unique_topic, 2, 0)
    assert (record.key, record.value) == (b"k-1", b'{"n": 1}')
    assert list(record.headers) == [("ce_type", b"OrderPlaced")]


@pytest.mark.kafka
async def test_missing_topics_wrong_partitions_and_oversized_records_are_refused(
    kafka_cluster: ClusterConfig, unique_topic: str
) -> None:
    missing = f"t-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PlanError, match=f"no topic '{missing}'"):
        await send(kafka_cluster, parse_request({"topic": missing, "value": "x"}, ["local"]))
    async with admin_client(kafka_cluster) as admin:
        assert missing not in await admin.list_topics()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        config = {"max.message.bytes": "2000"}
        await admin.create_topics([NewTopic(unique_topic, 1, 1, topic_configs=config)])
    finally:
        await admin.close()
    with pytest.raises(PlanError, match="partitions 0 to 0"):
        await send(kafka_cluster, parse_request({"topic": unique_topic, "partition": "3"},
                                                ["local"]))  # fmt: skip
    big = parse_request({"topic": unique_topic, "value": "x" * 5_000}, ["local"])
    with pytest.raises(PlanError, match=r"accepts at most 2,000 \(max.message.bytes\)"):
        await send(kafka_cluster, big)
