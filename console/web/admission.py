"""A gate in front of expensive index work (event searches): at most `concurrency` run at
once, at most `queue` more wait, and any beyond are refused at once (`Busy`, answered 429
with `Retry-After`).

Why: Starlette runs blocking work in one thread pool, first come first served. Two
hundred searches at once used to fill it, and every other step of every request (a token
look-up, the masking policy, a static file) queued behind all of them, so every request
finished at the end. Behind the gate, searches wait in an asyncio queue instead, and run
on threads of their own (a dedicated anyio limiter), so the shared pool stays free for
cheap work and a waiting search never holds a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

RETRY_AFTER_S = 1


class Busy(Exception):
    """Refused: `concurrency` searches run and `queue` more wait."""

    def __init__(self, what: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(f"too many {what} at once; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class AdmissionGate:
    def __init__(self, what: str, concurrency: int, queue: int) -> None:
        self.what = what
        self.concurrency = concurrency
        self.queue = queue
        self.waiting = 0
        self.running = 0
        self._threads: anyio.CapacityLimiter | None = None  # made on the loop that uses it
        self._slots: anyio.Semaphore | None = None

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` on a thread of the gate's own, once admitted; Busy when full."""
        if self._slots is None or self._threads is None:
            self._slots = anyio.Semaphore(self.concurrency, fast_acquire=True)
            self._threads = anyio.CapacityLimiter(self.concurrency)
        if self.running >= self.concurrency and self.waiting >= self.queue:
            raise Busy(self.what)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            # Not abandoned on cancellation: the slot is held until the thread is done,
            # so no more than `concurrency` threads ever work for the gate.
            return await anyio.to_thread.run_sync(work, *args, limiter=self._threads)
        finally:
            self.running -= 1
            self._slots.release()
