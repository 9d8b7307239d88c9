"""Login throttling: after a few failures for a user name or an address, wait longer.

Kept in memory per console process (several console processes each throttle on their
own; the limits still bound a guessing rate by the number of processes).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

FREE_ATTEMPTS = 5
WINDOW_S = 15 * 60
MAX_LOCK_S = 15 * 60


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._clock = clock or time.monotonic

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] < now - WINDOW_S:
            failures.popleft()
        return failures

    def retry_after(self, keys: list[str]) -> float:
        """Seconds to wait before the next attempt for any of these keys (0 = go ahead)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            failures = self._recent(key, now)
            extra = len(failures) - FREE_ATTEMPTS
            if extra >= 0 and failures:
                lock = min(2.0**extra, MAX_LOCK_S)
                wait = max(wait, failures[-1] + lock - now)
        return max(wait, 0.0)

    def failed(self, keys: list[str]) -> None:
        now = self._clock()
        for key in keys:
            self._recent(key, now).append(now)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
