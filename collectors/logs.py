"""How eventscope logs: plain lines or JSON lines, and repeated warnings summarised.

A broker that is down for 36 s makes aiokafka log "Unable connect to node" over a thousand
times; one line, then one count, say as much. `RepeatedLines` goes on a log handler. Lines
below WARNING always pass. Of warnings and errors with the same logger, level and message
template, the first passes and the others are counted for `every_s`; the first after that
passes with "(N more like it in the last T s)". Arguments may differ (node ids,
addresses): the template is what repeats.

`JsonLines` writes one JSON object per line (time in UTC, level, logger, message, the
exception's traceback if any), for log shippers that parse fields rather than text."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
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


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        body = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure_logging(verbose: bool, log_format: str) -> None:
    """The process's logging: INFO (DEBUG with `verbose`), plain or JSON lines, repeated
    warnings summarised; the chatty libraries at WARNING unless `verbose`."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=TEXT_FORMAT)
    for chatty in ("alembic", "httpx", "aiokafka"):  # -v shows their routine lines
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatedLines())  # a broker outage is a line, not a flood
        if log_format == "json":
            handler.setFormatter(JsonLines())
