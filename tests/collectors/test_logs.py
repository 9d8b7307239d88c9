"""Repeated warnings are summarised, not repeated a thousand times; JSON lines parse."""

from __future__ import annotations

import json
import logging
import sys

from collectors.logs import JsonLines, RepeatedLines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", level, __file__, 1, message, args, None)


def test_a_flood_becomes_one_line_and_one_count() -> None:
    clock = Clock()
    lines = RepeatedLines(every_s=30, clock=clock)
    shown = []
    for attempt in range(1_366):  # a 36 s broker outage, ~38 attempts a second
        clock.now = attempt * 36 / 1_366
        line = record("Unable connect to node with id %s: %s", 1, f"attempt {attempt}")
        if lines.filter(line):
            shown.append(line.getMessage())
    assert len(shown) == 2
    assert shown[0] == "Unable connect to node with id 1: attempt 0"
    assert shown[1].startswith("Unable connect to node with id 1: attempt 1139 (")
    assert shown[1].endswith("more like it in the last 30 s)")


def test_other_lines_and_lower_levels_pass() -> None:
    lines = RepeatedLines(every_s=30, clock=Clock())
    assert lines.filter(record("disk full"))
    assert not lines.filter(record("disk full"))
    assert lines.filter(record("disk full", level=logging.WARNING))  # another level
    assert lines.filter(record("broker down"))  # another template
    assert all(lines.filter(record("progress", level=logging.INFO)) for _ in range(5))


def test_a_percent_sign_in_the_arguments_survives_the_summary() -> None:
    clock = Clock()
    lines = RepeatedLines(every_s=1, clock=clock)
    assert lines.filter(record("bad value %s", "100%"))
    assert not lines.filter(record("bad value %s", "100%"))
    clock.now = 2
    again = record("bad value %s", "100%")
    assert lines.filter(again)
    assert again.getMessage() == "bad value 100% (1 more like it in the last 2 s)"


def test_json_lines_carry_time_level_logger_message_and_the_traceback() -> None:
    line = record("bad value %s", '"quoted" \u202e')
    body = json.loads(JsonLines().format(line))
    assert body["level"] == "ERROR" and body["logger"] == "aiokafka"
    assert body["message"] == 'bad value "quoted" \u202e'
    assert body["time"].endswith("Z") and "exception" not in body
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "RuntimeError: boom" in json.loads(JsonLines().format(failed))["exception"]
