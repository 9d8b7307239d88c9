"""Repeated warnings and errors, summarised: a broker that is down for 36 s makes aiokafka
log "Unable connect to node" over a thousand times; one line, then one count, say as much.

`RepeatedLines` goes on a log handler. Lines below WARNING always pass. Of warnings and
errors with the same logger, level and message template, the first passes and the others
are counted for `every_s`; the first after that passes with "(N more like it in the last
T s)". Arguments may differ (node ids, addresses): the template is what repeats."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

EVERY_S = 30.0
MAX_TEMPLATES = 1_000  # distinct repeating lines remembered; the oldest are forgotten


@dataclass
class _Seen:
    since: float
    held: int = 0


class RepeatedLines(logging.Filter):
    def __init__(self, every_s: float = EVERY_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self.every_s:
            seen.held += 1
            return False
        if seen is not None and seen.held:
            # Formatting happens later, with the record's own arguments: escape nothing
            # of ours into the template, append after it.
            record.msg = f"{record.getMessage()} ({seen.held} more like it in the last "
            record.msg += f"{now - seen.since:.0f} s)"
            record.args = None
        self._seen.pop(key, None)
        self._seen[key] = _Seen(now)
        if len(self._seen) > MAX_TEMPLATES:
            del self._seen[next(iter(self._seen))]
        return True
