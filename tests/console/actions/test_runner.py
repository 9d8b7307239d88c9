"""Redrive and replay jobs end to end on the real broker, on both index backends."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from collectors.index.audit_models import audit_table
from console.actions.job_request import parse_request
from console.actions.runner import ActionRunner
from console.stores import jobs
from tests.console.actions.helpers import (
    CLUSTER,
    connect_headers,
    header_map,
    index_topic,
    read_topic,
    spring_headers,
)
from tests.kafka_helpers import create_topic, produce


async def run_until_finished(runner: ActionRunner, engine, job_id: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await asyncio.to_thread(runner.claim_next)
        if job is not None:
            await runner.run(job)
        view = jobs.get_job(engine, job_id)
        if view and view["status"] in jobs.FINISHED:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {jobs.get_job(engine, job_id)}")


async def test_redrive_spring_and_connect_records_to_their_original_topics(
    index_db, kafka_bootstrap, kafka_cluster, unique_topic
) -> None:
    orders, payments = f"{unique_topic}-orders", f"{unique_topic}-payments"
    spring_dlt, connect_dlq = f"{orders}-dlt", f"{payments}.dlq"
    for topic in (orders, payments, spring_dlt, connect_dlq):
        await create_topic(kafka_bootstrap, topic)
    await produce(kafka_bootstrap, spring_dlt, [
        (b"k1", b'{"order": 1}', spring_headers(orders, 0, 7)),
        (None, b"\x00\x01binary", spring_headers(orders, 0, 8)),
    ])  # fmt: skip
    await produce(kafka_bootstrap, connect_dlq, [(b"p1", b"pay", connect_headers(payments, 0, 3))])
    await index_topic(index_db.engine, kafka_bootstrap, spring_dlt, 2)
    await index_topic(index_db.engine, kafka_bootstrap, connect_dlq, 1)

    request = parse_request(
        {"kind": "redrive", "filter": {"topic": f"{spring_dlt},{connect_dlq}"}}, [CLUSTER]
    )
    preview = jobs.preview(index_db.engine, request)
    assert preview["to_send"] == 3
    assert preview["targets"] == {orders: 2, payments: 1}
    job_id = jobs.create_job(index_db.engine, request, "tester", "127.0.0.1")
    runner = ActionRunner(index_db.engine, [kafka_cluster])
    job = await run_until_finished(runner, index_db.engine, job_id)
    assert (job["sent"], job["failed"], job["skipped"]) == (3, 0, 0)

    landed = await read_topic(kafka_bootstrap, orders, 2)
    assert [(r.key, r.value) for r in landed] == [
        (b"k1", b'{"order": 1}'),
        (None, b"\x00\x01binary"),
    ]
    headers = header_map(landed[0].headers)
    assert not any(name.startswith("kafka_dlt-") for name in headers)
    assert headers["trace-me"] == b"keep"
    assert headers["eventscope-action-id"].decode() == job["action_id"]
    assert headers["eventscope-source-topic"] == spring_dlt.encode()
    assert headers["eventscope-source-offset"] == b"0"
    assert headers["eventscope-redrive-count"] == b"1"
    paid = await read_topic(kafka_bootstrap, payments, 1)
    assert [(r.key, r.value) for r in paid] == [(b"p1", b"pay")]
    assert not any(n.startswith("__connect.errors.") for n in header_map(paid[0].headers))
    assert header_map(paid[0].headers)["app"] == b"orders"

    # The status of each DLQ record says where it went; a second redrive skips them.
    states = jobs.redrive_states(index_db.engine, CLUSTER, [(spring_dlt, 0, 0)])
    assert states[(spring_dlt, 0, 0)]["sent_to"]["target_offset"] == landed[0].offset
    again = jobs.create_job(index_db.engine, request, "tester", None)
    job = await run_until_finished(runner, index_db.engine, again)
    assert (job["sent"], job["skipped"]) == (0, 3)
    with index_db.engine.connect() as connection:
        actions = [r.action for r in connection.execute(select(audit_table.c.action))]
    assert actions == ["action.redrive", "action.redrive"]


async def test_forced_redrive_to_a_chosen_topic_keeps_error_headers_when_asked(
    index_db, kafka_bootstrap, kafka_cluster, unique_topic
) -> None:
    dlt, target = f"{unique_topic}.DLT", f"{unique_topic}-fixed"
    await create_topic(kafka_bootstrap, dlt)
    await create_topic(kafka_bootstrap, target)
    await produce(kafka_bootstrap, dlt, [(b"k", b"v", spring_headers("elsewhere", 0, 1))])
    await index_topic(index_db.engine, kafka_bootstrap, dlt, 1)
    request = parse_request(
        {"kind": "redrive", "items": [f"{dlt}/0/0"], "target_topic": target,
         "keep_error_headers": True},
        [CLUSTER],
    )  # fmt: skip
    job_id = jobs.create_job(index_db.engine, request, "tester", None)
    runner = ActionRunner(index_db.engine, [kafka_cluster])
    await run_until_finished(runner, index_db.engine, job_id)
    landed = await read_topic(kafka_bootstrap, target, 1)
    assert header_map(landed[0].headers)["kafka_dlt-exception-message"] == b"it went wrong"


async def test_replay_a_correlation_id_to_a_replay_topic(
    index_db, kafka_bootstrap, kafka_cluster, unique_topic
) -> None:
    target = f"{unique_topic}-replay"
    await create_topic(kafka_bootstrap, unique_topic)
    await produce(kafka_bootstrap, unique_topic, [
        (b"a", b"1", [("correlation_id", b"c-42")]),
        (b"b", b"2", [("correlation_id", b"other")]),
        (b"c", b"3", [("correlation_id", b"c-42")]),
    ])  # fmt: skip
    await index_topic(index_db.engine, kafka_bootstrap, unique_topic, 3)
    request = parse_request(
        {"kind": "replay", "filter": {"correlation_id": "c-42"}, "target_topic": target},
        [CLUSTER],
    )
    job_id = jobs.create_job(index_db.engine, request, "tester", None)
    runner = ActionRunner(index_db.engine, [kafka_cluster])
    job = await run_until_finished(runner, index_db.engine, job_id)
    assert job["sent"] == 2
    landed = await read_topic(kafka_bootstrap, target, 2)
    assert [(r.key, r.value) for r in landed] == [(b"a", b"1"), (b"c", b"3")]
    assert header_map(landed[0].headers)["correlation_id"] == b"c-42"
    assert "eventscope-redrive-count" not in header_map(landed[0].headers)
