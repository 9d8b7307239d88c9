"""A pacing rate limiter: the n-th message may leave no earlier than start + n / rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

MAX_CATCH_UP_S = 1.0


class RateLimiter:
    def __init__(
        self,
        per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("a rate must be positive")
        self.per_second = per_second
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None

    def batch_size(self, wanted: int) -> int:
        """How many messages to release at once: about 1/20 s worth, so pacing stays smooth."""
        if self.per_second is None:
            return wanted
        return max(1, min(wanted, int(self.per_second / 20)))

    async def acquire(self, count: int) -> None:
        """Wait until `count` more messages may be sent."""
        if self.per_second is None or count <= 0:
            return
        now = self._clock()
        # Time spent elsewhere (reading, writing the index) is made up for, a second's
        # worth at most, so that the job's average stays at the rate without a burst.
        if self._next_at is None or self._next_at < now - MAX_CATCH_UP_S:
            self._next_at = now
        wait = self._next_at - now
        if wait > 0:
            await self._sleep(wait)
        self._next_at += count / self.per_second
