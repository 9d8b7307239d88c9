"""A running job's lease, kept alive by a heartbeat while the job runs.

The lease is short (a few seconds) so that a runner that died is replaced quickly: any
other runner may take a job whose lease ran out. It stays safe because the runner renews
it in the background, independently of how long a chunk takes, and starts a send only
while at least half of the lease is left: a send started then is acknowledged long before
the lease could run out, so a successor that reads the target partitions after taking the
job sees everything its predecessor sent. A runner whose renewal finds another owner stops
sending at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("eventscope.actions")

BEATS_PER_LEASE = 5  # a renewal every lease/5: four may fail before sending pauses


class LeaseLost(Exception):
    """Another runner owns the job now."""


class JobLease:
    """What a runner knows of its lease on one job: until when it holds (by its own clock),
    the job's status as of the last renewal (so a cancel is seen), and whether it was lost."""

    def __init__(
        self,
        renew: Callable[[], Awaitable[str | None]],
        lease_s: float,
        status: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._renew = renew
        self.lease_s = lease_s
        self.status = status
        self.lost = False
        self._clock = clock
        self._valid_until = clock() + lease_s  # claimed just now
        self._renewed = asyncio.Event()

    async def renew(self) -> None:
        """One renewal: the lease counts from before the request, in case it was slow."""
        asked_at = self._clock()
        status = await self._renew()
        if status is None:
            self.lost = True
        else:
            self.status = status
            self._valid_until = asked_at + self.lease_s
        self._renewed.set()
        self._renewed = asyncio.Event()

    async def beat(self) -> None:
        """Renew every lease/5 until the lease is lost (or the task is cancelled); a failed
        renewal (the index briefly unreachable) is retried at the next beat."""
        while not self.lost:
            await asyncio.sleep(self.lease_s / BEATS_PER_LEASE)
            try:
                await self.renew()
            except Exception as exc:
                log.warning("lease renewal failed: %s: %s", type(exc).__name__, exc)

    def left_s(self) -> float:
        return self._valid_until - self._clock()

    async def ready_to_send(self) -> None:
        """Return at once while half the lease is left; otherwise wait for a renewal.
        Raises LeaseLost when the job has a new owner."""
        while not self.lost and self.left_s() < self.lease_s / 2:
            renewed = self._renewed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(renewed.wait(), self.lease_s / BEATS_PER_LEASE)
        if self.lost:
            raise LeaseLost


@contextlib.asynccontextmanager
async def heartbeat(lease: JobLease) -> AsyncIterator[JobLease]:
    """Keep `lease` renewed for the duration of the block."""
    task = asyncio.create_task(lease.beat())
    try:
        yield lease
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
