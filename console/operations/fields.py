"""What every Kafka operation shares: reading a form's or a body's fields, and the one
error an operation raises for bad input or a refusal of Kafka's (PlanError, in words for
the person who asked; the views answer it with a 400)."""

from __future__ import annotations

import re
from typing import Any

from aiokafka.errors import for_code

from console.stores.events import SearchError
from console.stores.events import parse_time as parse_search_time

TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class PlanError(ValueError):
    """A request that cannot be carried out, in words for the person who made it."""


def field_text(value: Any) -> str:
    """A field as stripped text (a number as its digits); "" for anything else."""
    if isinstance(value, str):
        return value.strip()
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""


def topic_name(value: Any) -> str:
    name = field_text(value)
    if not TOPIC_NAME.match(name) or name in (".", ".."):
        raise PlanError("topic: 1 to 249 letters, digits, '.', '_' or '-' (not '.' or '..')")
    return name


def whole_number(value: Any, field: str, low: int, high: int) -> int:
    text = field_text(value)
    if not text.isdigit() or not low <= int(text) <= high:
        raise PlanError(f"{field}: a whole number from {low} to {high:,}")
    return int(text)


def parse_time(value: str) -> int:
    """ISO 8601 (UTC unless an offset is given) or epoch milliseconds, as the event search
    reads them."""
    try:
        return parse_search_time("value", value)
    except SearchError as exc:
        raise PlanError(str(exc)) from None


def refuse_on_error(code: int, message: str | None, what: str) -> None:
    """A Kafka error code in an answer as a PlanError naming Kafka's error (nothing for 0)."""
    if code:
        detail = f": {message}" if message else ""
        raise PlanError(f"Kafka refused to {what}: {for_code(code).__name__}{detail}")
