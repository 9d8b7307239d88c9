"""The search gate: a bounded number run, a bounded number wait, the rest are refused."""

from __future__ import annotations

import asyncio
import threading

import pytest

from console.web.admission import AdmissionGate, Busy


async def test_one_runs_one_waits_and_the_third_is_refused_at_once() -> None:
    gate = AdmissionGate("searches", concurrency=1, queue=1)
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "slow"

    first = asyncio.create_task(gate.run(slow))
    await asyncio.to_thread(started.wait, 10)
    second = asyncio.create_task(gate.run(lambda: "queued"))
    while gate.waiting == 0:  # the second is in the queue
        await asyncio.sleep(0)
    with pytest.raises(Busy) as refused:
        await gate.run(lambda: "refused")
    assert refused.value.retry_after_s >= 1
    release.set()
    assert await first == "slow"
    assert await second == "queued"
    assert (gate.running, gate.waiting) == (0, 0)
    assert await gate.run(lambda: "free again") == "free again"


async def test_a_waiting_caller_that_gives_up_leaves_the_queue() -> None:
    gate = AdmissionGate("searches", concurrency=1, queue=1)
    release = threading.Event()
    first = asyncio.create_task(gate.run(release.wait, 10))
    while gate.running == 0:
        await asyncio.sleep(0)
    waiting = asyncio.create_task(gate.run(lambda: None))
    while gate.waiting == 0:
        await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert gate.waiting == 0
    release.set()
    assert await first is True
