"""The rate limit: pacing logic alone, and honoured within 10% by a real redrive."""

from __future__ import annotations

import pytest

from console.actions.job_request import parse_request
from console.actions.rate import RateLimiter
from console.actions.runner import ActionRunner
from console.stores import jobs
from tests.console.actions.helpers import CLUSTER, index_topic, read_topic, spring_headers
from tests.console.actions.test_runner import run_until_finished
from tests.kafka_helpers import create_topic, produce


async def test_pacing_releases_messages_at_the_rate() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(100, clock=lambda: now[0], sleep=sleep)
    for _ in range(40):
        await limiter.acquire(limiter.batch_size(1000))
    assert limiter.batch_size(1000) == 5
    assert now[0] == pytest.approx((40 - 1) * 5 / 100)


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.mark.parametrize("index_db", ["sqlite"], indirect=True)
async def test_a_redrive_honours_its_rate_within_ten_percent(
    index_db, kafka_bootstrap, kafka_cluster, unique_topic
) -> None:
    original, dlt = f"{unique_topic}-o", f"{unique_topic}-dlt"
    await create_topic(kafka_bootstrap, original)
    await create_topic(kafka_bootstrap, dlt)
    await produce(
        kafka_bootstrap, dlt, [(None, b"x", spring_headers(original, 0, i)) for i in range(600)]
    )
    await index_topic(index_db.engine, kafka_bootstrap, dlt, 600)
    request = parse_request({"kind": "redrive", "filter": {"topic": dlt}, "rate": 200}, [CLUSTER])
    job_id = jobs.create_job(index_db.engine, request, "tester", None)
    job = await run_until_finished(
        ActionRunner(index_db.engine, [kafka_cluster]), index_db.engine, job_id
    )
    assert job["sent"] == 600
    landed = await read_topic(kafka_bootstrap, original, 600)
    seconds = (landed[-1].timestamp - landed[0].timestamp) / 1000
    rate = (len(landed) - 1) / seconds
    assert 180 <= rate <= 220, rate
