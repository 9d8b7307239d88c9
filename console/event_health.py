"""Event health, the pure part: the `[event_health]` section, reading a record's sequence
field, finding where a key's sequence goes backwards (or skips), and telling duplicates
from retry and dead-letter copies.

::

    [event_health]
    max_rows = 20000                 # newest records of the window each check reads

    [[event_health.sequences]]
    topic = "shop.orders"            # a topic name or glob
    field = "$.version"              # a JSON path into the payload,
                                     # "header:<name>" or "ce:<extension>"
    gaps = false                     # true: a skipped number is a break too

The checks run on demand (console/stores/event_health.py reads the index, bounded by the
window and `max_rows`); ingest does not change. Errors are EventHealthConfigError naming
the key (``sequences[0].field``), prefixed with ``event_health.`` by console/settings.py.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collectors.conventions import CLOUDEVENTS_HEADER_PREFIX, resolve_json_path, split_json_path

KNOWN_KEYS = ("max_rows", "sequences")
SEQUENCE_KEYS = ("topic", "field", "gaps")
DEFAULT_MAX_ROWS = 20_000
MAX_MAX_ROWS = 1_000_000
MAX_SEQUENCES = 100
MAX_TEXT = 200
MAX_SEQUENCE_CHARS = 64  # a longer sequence value is not compared
# Spring Kafka's retry topics: <topic>-retry, <topic>-retry-N, <topic>-retry-<delay ms>.
RETRY_TOPIC = re.compile(r".+-retry(-[0-9]+)?", re.IGNORECASE)
FIELD_FORMS = "a JSON path ($.version), header:<name> or ce:<extension>"
_HEADER_NAME = re.compile(r"[!-~]{1,200}")


class EventHealthConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class SequenceField:
    """Where a record's sequence number is: `kind` is json (a path into the payload),
    header (a header's value) or cloudevents (the extension: header ce_<name> in binary
    mode, attribute <name> of a structured event)."""

    kind: str
    name: str  # the JSON path, the header name (lower case) or the extension name
    path: tuple[str, ...] = ()

    @property
    def spelled(self) -> str:
        return {"json": self.name, "header": f"header:{self.name}"}.get(
            self.kind, f"ce:{self.name}"
        )


@dataclass(frozen=True)
class SequenceRule:
    topic: str  # a glob
    field: SequenceField
    gaps: bool = False

    def matches(self, topic: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.topic)


@dataclass(frozen=True)
class EventHealthSettings:
    max_rows: int = DEFAULT_MAX_ROWS
    sequences: tuple[SequenceRule, ...] = ()

    def sequence_for(self, topic: str) -> SequenceRule | None:
        """The first rule whose glob matches `topic`."""
        return next((rule for rule in self.sequences if rule.matches(topic)), None)


def parse_field(text: Any, key: str = "field") -> SequenceField:
    """`$.version`, `header:x-seq` or `ce:sequence`."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise EventHealthConfigError(key, f"expected {FIELD_FORMS}, up to {MAX_TEXT} characters")
    text = text.strip()
    if text.startswith("$"):
        try:
            return SequenceField("json", text, split_json_path(text))
        except ValueError as exc:
            raise EventHealthConfigError(key, str(exc)) from None
    prefix, _, name = text.partition(":")
    name = name.strip()
    if prefix in ("header", "ce") and _HEADER_NAME.fullmatch(name):
        if prefix == "header":
            return SequenceField("header", name.lower())
        if re.fullmatch(r"[a-z0-9]{1,20}", name):  # CloudEvents attribute names
            return SequenceField("cloudevents", name)
        raise EventHealthConfigError(key, "a CloudEvents extension name is 1-20 of a-z, 0-9")
    raise EventHealthConfigError(key, f"expected {FIELD_FORMS}, got {text[:MAX_TEXT]!r}")


def event_health_settings(data: Any) -> EventHealthSettings:
    """The `[event_health]` table, checked; raises EventHealthConfigError naming the key."""
    if not isinstance(data, Mapping):
        raise EventHealthConfigError("event_health", "must be a table")
    for key in data:
        if key not in KNOWN_KEYS:
            raise EventHealthConfigError(str(key), f"unknown key (known: {', '.join(KNOWN_KEYS)})")
    max_rows = data.get("max_rows", DEFAULT_MAX_ROWS)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int):
        raise EventHealthConfigError("max_rows", "must be a whole number")
    if not 100 <= max_rows <= MAX_MAX_ROWS:
        raise EventHealthConfigError("max_rows", f"must be between 100 and {MAX_MAX_ROWS}")
    raw = data.get("sequences", [])
    if not isinstance(raw, list) or len(raw) > MAX_SEQUENCES:
        raise EventHealthConfigError("sequences", f"must be a list of at most {MAX_SEQUENCES} "
                                                  "tables")  # fmt: skip
    rules = []
    for index, item in enumerate(raw):
        where = f"sequences[{index}]"
        if not isinstance(item, Mapping):
            raise EventHealthConfigError(where, "must be a table with topic and field")
        for key in item:
            if key not in SEQUENCE_KEYS:
                raise EventHealthConfigError(f"{where}.{key}", "unknown key (known: topic, "
                                                               "field, gaps)")  # fmt: skip
        topic = item.get("topic")
        if not isinstance(topic, str) or not topic.strip() or len(topic) > MAX_TEXT:
            raise EventHealthConfigError(f"{where}.topic", "must be a topic name or glob")
        if "field" not in item:
            raise EventHealthConfigError(f"{where}.field", "required")
        gaps = item.get("gaps", False)
        if not isinstance(gaps, bool):
            raise EventHealthConfigError(f"{where}.gaps", "must be true or false")
        rules.append(SequenceRule(topic.strip(), parse_field(item["field"], f"{where}.field"),
                                  gaps))  # fmt: skip
    return EventHealthSettings(max_rows=max_rows, sequences=tuple(rules))


# --- a record's sequence -------------------------------------------------------------------

Sequence = int | str


def sequence_value(raw: Any) -> Sequence | None:
    """A comparable sequence: an integer (JSON number or digits), else a short string;
    None for anything else (missing, float, bool, object, too long)."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() and abs(raw) < 2**63 else None
    if isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > MAX_SEQUENCE_CHARS:
            return None
        if re.fullmatch(r"-?[0-9]{1,19}", text):
            return int(text)
        return text
    return None


def _header_values(headers_json: str | None) -> dict[str, Any]:
    """Header name (lower case) -> text value, the last occurrence winning (as indexed:
    a JSON list of [name, value], value a string, {"b64": ...} or null)."""
    try:
        entries = json.loads(headers_json or "[]")
    except ValueError:
        return {}
    found: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            continue
        value = entry[1]
        if isinstance(value, dict) and isinstance(value.get("b64"), str):
            try:
                value = base64.b64decode(value["b64"])[:MAX_SEQUENCE_CHARS].decode()
            except (ValueError, UnicodeDecodeError):
                value = None
        found[entry[0].lower()] = value if isinstance(value, str) else None
    return found


def _document(value: bytes | None, decoded_value: str | None) -> Any:
    text: str | bytes | None = decoded_value if decoded_value is not None else value
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def read_sequence(
    field: SequenceField, value: bytes | None, decoded_value: str | None, headers_json: str | None
) -> Sequence | None:
    """The record's sequence per `field`, or None when it has none (or an unusable one)."""
    if field.kind == "header":
        return sequence_value(_header_values(headers_json).get(field.name))
    if field.kind == "cloudevents":
        headers = _header_values(headers_json)
        header = headers.get(CLOUDEVENTS_HEADER_PREFIX + field.name)
        if header is not None:
            return sequence_value(header)
        if str(headers.get("content-type") or "").lower().startswith("application/cloudevents"):
            document = _document(value, decoded_value)
            if isinstance(document, dict):
                return sequence_value(document.get(field.name))
        return None
    return sequence_value(resolve_json_path(_document(value, decoded_value), field.path))


@dataclass(frozen=True)
class SequencedRecord:
    partition: int
    offset: int
    key: bytes
    sequence: Sequence
    timestamp_ms: int


@dataclass(frozen=True)
class SequenceBreak:
    """In offset order within a partition, `key`'s sequence went from `before` (at
    `before_offset`) to `after` (at `offset`): backwards, or a skip."""

    kind: str  # "backwards" or "gap"
    partition: int
    key: bytes
    before_offset: int
    before: Sequence
    offset: int
    after: Sequence
    timestamp_ms: int


def compare(before: Sequence, after: Sequence, gaps: bool) -> str | None:
    """ "backwards", "gap" (only when `gaps`) or None (in order, a repeat, or not
    comparable: an integer and a string)."""
    if isinstance(before, int) != isinstance(after, int):
        return None
    if after < before:  # type: ignore[operator]
        return "backwards"
    if gaps and isinstance(before, int) and isinstance(after, int) and after > before + 1:
        return "gap"
    return None


def sequence_breaks(records: Iterable[SequencedRecord], gaps: bool) -> list[SequenceBreak]:
    """Every break, walking each partition in offset order, key by key."""
    last: dict[tuple[int, bytes], SequencedRecord] = {}
    found = []
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        slot = (record.partition, record.key)
        previous = last.get(slot)
        if previous is not None:
            kind = compare(previous.sequence, record.sequence, gaps)
            if kind is not None:
                found.append(SequenceBreak(
                    kind, record.partition, record.key, previous.offset, previous.sequence,
                    record.offset, record.sequence, record.timestamp_ms,
                ))  # fmt: skip
        if previous is None or compare(previous.sequence, record.sequence, False) is None:
            last[slot] = record  # after a step back, the next record is compared to the high mark
    return found


# --- copies -----------------------------------------------------------------------------------


def is_retry_topic(topic: str) -> bool:
    return RETRY_TOPIC.fullmatch(topic) is not None


def copy_kind(topic: str, is_dlq: bool, dlq_attempts: int | None) -> str:
    """What a copy of an event is: "dead-letter" (a dead-letter header or topic), "retry"
    (a retry header or topic), or "plain" — only plain copies make duplicates."""
    if is_dlq:
        return "dead-letter"
    if dlq_attempts is not None or is_retry_topic(topic):
        return "retry"
    return "plain"
