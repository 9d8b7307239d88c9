"""kill -9 in the middle of a 10,000-message redrive: a runner started at once takes the job
over when the dead one's lease runs out (seconds, not half a minute) and the target topic
holds every message exactly once (counted by its provenance headers)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time

from console.actions.job_request import parse_request
from console.actions.provenance import provenance_of
from console.actions.runner import LEASE_S
from console.stores import jobs
from tests.conftest import ROOT
from tests.console.actions.helpers import CLUSTER, index_topic, read_topic, spring_headers
from tests.kafka_helpers import create_topic, produce

COUNT = 10_000


def start_runner(index_url: str, bootstrap: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.console.actions.runner_process", index_url, bootstrap],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_kill_9_mid_redrive_resumes_and_sends_each_message_once(
    index_db,
    kafka_bootstrap,
    unique_topic,
    report_figure,
) -> None:
    original, dlt = f"{unique_topic}-orig", f"{unique_topic}-dlt"
    await create_topic(kafka_bootstrap, original, partitions=3)
    await create_topic(kafka_bootstrap, dlt)
    records = [(str(i).encode(), b"v%d" % i, spring_headers(original, 0, i)) for i in range(COUNT)]
    await produce(kafka_bootstrap, dlt, records)
    await index_topic(index_db.engine, kafka_bootstrap, dlt, COUNT)
    request = parse_request({"kind": "redrive", "filter": {"topic": dlt}}, [CLUSTER])
    job_id = jobs.create_job(index_db.engine, request, "tester", None)

    first = start_runner(index_db.url, kafka_bootstrap)
    try:
        await wait_for(
            lambda: (jobs.get_job(index_db.engine, job_id) or {}).get("sent", 0) >= 2_000,
            60, "the first runner to send some",
        )  # fmt: skip
        os.kill(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    interrupted = jobs.get_job(index_db.engine, job_id)
    assert interrupted["status"] == "running"
    assert interrupted["sent"] < COUNT

    second = start_runner(index_db.url, kafka_bootstrap)
    try:
        journal = lambda: " ".join(e["message"] for e in jobs.job_journal(index_db.engine, job_id))  # noqa: E731
        await wait_for(lambda: "resumed" in journal(), 30, "the second runner to take the job over")
        takeover_s = time.monotonic() - killed_at
        job = await wait_for(
            lambda: (lambda j: j if j and j["status"] in jobs.FINISHED else None)(
                jobs.get_job(index_db.engine, job_id)
            ),
            90, "the job to finish after the restart",
        )  # fmt: skip
    finally:
        second.kill()
        second.wait()
    report_figure(
        f"job taken over {takeover_s:.1f} s after its runner was killed (lease {LEASE_S:g} s)"
    )
    assert takeover_s < LEASE_S + 2
    assert (job["status"], job["sent"], job["failed"]) == ("done", COUNT, 0)

    landed = await read_topic(kafka_bootstrap, original, COUNT, partitions=3, timeout=60)
    sources = collections.Counter()
    for record in landed:
        provenance = provenance_of(record.headers)
        assert provenance is not None and provenance.action_id == job["action_id"]
        sources[provenance.offset] += 1
    assert len(landed) == COUNT
    assert set(sources) == set(range(COUNT))
    assert max(sources.values()) == 1
