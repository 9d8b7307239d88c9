"""The job lease: sends start only while half of it is left, and stop when it is lost."""

from __future__ import annotations

import asyncio

import pytest

from console.actions.lease import JobLease, LeaseLost, heartbeat


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lease_with(answers: list[str | None], clock: Clock, lease_s: float = 5.0) -> JobLease:
    async def renew() -> str | None:
        return answers.pop(0) if answers else "running"

    return JobLease(renew, lease_s, "running", clock)


async def test_a_fresh_lease_sends_at_once_and_a_renewal_carries_the_status() -> None:
    clock = Clock()
    lease = lease_with(["cancelling"], clock)
    await asyncio.wait_for(lease.ready_to_send(), 0.1)
    clock.now += 2
    await lease.renew()
    assert lease.status == "cancelling" and lease.left_s() == 5.0


async def test_sending_waits_when_less_than_half_the_lease_is_left_until_a_renewal() -> None:
    clock = Clock()
    lease = lease_with([], clock, lease_s=0.5)
    clock.now += 0.3  # renewals failed for a while: 0.2 s left of 0.5
    waiting = asyncio.create_task(lease.ready_to_send())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    await lease.renew()
    await asyncio.wait_for(waiting, 0.5)


async def test_a_lost_lease_stops_sending() -> None:
    clock = Clock()
    lease = lease_with([None], clock)
    await lease.renew()
    assert lease.lost
    with pytest.raises(LeaseLost):
        await lease.ready_to_send()


async def test_the_heartbeat_renews_in_the_background_and_survives_a_failed_renewal() -> None:
    calls: list[str] = []

    async def renew() -> str | None:
        calls.append("renew")
        if len(calls) == 1:
            raise ConnectionError("index unreachable")
        return "running"

    lease = JobLease(renew, 0.1, "running")
    async with heartbeat(lease):
        await asyncio.sleep(0.1)
    assert len(calls) >= 3 and not lease.lost
