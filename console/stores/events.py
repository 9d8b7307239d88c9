"""Searching the events of the index: filters, newest-first order, cursor pagination.

Look-ups by identity (correlation id, event id, trace id, key) use their indexes and stay
fast at tens of millions of rows. Payload text and header filters have no index: they scan
at most `text_scan_rows` of the newest events, and the result says so, so the user always
sees the cap that applied.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Engine, LargeBinary, and_, bindparam, func, literal, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from collectors.conventions import resolve_json_path, split_json_path
from collectors.index.engine import statement_deadline
from collectors.index.identity import identity_equals, key_equals, narrowing_only
from collectors.index.models import EVENTS_IS_DLQ
from collectors.index.models import events_table as events

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
TEXT_SCAN_ROWS = 1_000_000
PLAIN_TEXT = re.compile(r"[A-Za-z0-9 _.:@+-]+")  # written as is by every JSON encoder
MAX_FILTER_CHARS = 1_000
# Filters that are identities of collectors/index/identity.py, found through their hash.
IDENTITY_FILTERS = ("correlation_id", "event_id", "trace_id")

# The list view leaves out the bulky columns; the detail view reads the whole row.
LIST_COLUMNS = [
    c for c in events.c if c.name not in ("value", "decoded_value", "dlq_stacktrace", "headers")
]


class SearchError(ValueError):
    """A filter the user gave is not valid; the message names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EventFilter:
    cluster: str | None = None
    topics: tuple[str, ...] = ()
    partition: int | None = None
    time_from_ms: int | None = None
    time_to_ms: int | None = None
    offset_from: int | None = None
    offset_to: int | None = None
    key: str | None = None
    event_type: str | None = None
    source: str | None = None
    header_name: str | None = None
    header_value: str | None = None
    correlation_id: str | None = None
    event_id: str | None = None
    trace_id: str | None = None
    text: str | None = None
    json_path: str | None = None  # $.a.b: a field of the JSON or decoded payload ...
    json_value: str | None = None  # ... that equals this (else: that exists)
    dlq_only: bool = False
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def query_args(self) -> dict[str, str]:
        """The filter as URL query parameters (for links and the next page)."""
        args: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value in (None, (), False) or name in ("cursor",):
                continue
            if name == "limit" and value == DEFAULT_LIMIT:
                continue
            if name == "topics":
                args["topic"] = ",".join(value)
            elif name in ("time_from_ms", "time_to_ms"):
                args[name.removesuffix("_ms")] = format_time(value)
            else:
                args[name] = "1" if value is True else str(value)
        return args

    @property
    def needs_scan(self) -> bool:
        return bool(self.text or self.header_name or self.json_path)

    @property
    def looks_up(self) -> bool:
        """Whether a key or identity filter finds the rows (through a hash index)."""
        identities = (getattr(self, name) for name in IDENTITY_FILTERS)
        return self.key is not None or any(value is not None for value in identities)


def format_time(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(field: str, raw: str) -> int:
    """ISO 8601 (UTC unless an offset is given) or milliseconds since the epoch."""
    text = raw.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(field, f"not a time: {raw!r} (use ISO 8601 or epoch ms)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def query_text(
    params: Mapping[str, str], name: str, max_chars: int = MAX_FILTER_CHARS
) -> str | None:
    """A query parameter, stripped; None when absent or blank; SearchError when hostile."""
    value = params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_chars:
        raise SearchError(name, f"longer than {max_chars} characters")
    if "\x00" in value:
        raise SearchError(name, "contains a NUL character")
    return value.strip()


def parse_filter(params: Mapping[str, str]) -> EventFilter:
    """Build a filter from query parameters; every bad value raises SearchError naming it."""

    def text(name: str) -> str | None:
        return query_text(params, name)

    def integer(name: str, minimum: int = 0) -> int | None:
        value = text(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise SearchError(name, f"not an integer: {value!r}") from None
        if number < minimum or number > 2**63 - 1:
            raise SearchError(name, f"out of range: {value}")
        return number

    def time(name: str) -> int | None:
        value = text(name)
        return None if value is None else parse_time(name, value)

    topics_raw = text("topic")
    topics = tuple(t.strip() for t in topics_raw.split(",") if t.strip()) if topics_raw else ()
    limit = integer("limit", minimum=1) or DEFAULT_LIMIT
    if limit > MAX_LIMIT:
        raise SearchError("limit", f"at most {MAX_LIMIT}")
    cursor = text("cursor")
    if cursor is not None:
        decode_cursor(cursor)
    trace_id = text("trace_id")
    return EventFilter(
        cluster=text("cluster"),
        topics=topics,
        partition=integer("partition"),
        time_from_ms=time("time_from"),
        time_to_ms=time("time_to"),
        offset_from=integer("offset_from"),
        offset_to=integer("offset_to"),
        key=params.get("key") or None,
        event_type=text("event_type"),
        source=text("source"),
        header_name=text("header_name"),
        header_value=text("header_value"),
        correlation_id=text("correlation_id"),
        event_id=text("event_id"),
        trace_id=trace_id.lower() if trace_id else None,
        text=text("text"),
        json_path=_json_path(text("json_path")),
        json_value=text("json_value"),
        dlq_only=params.get("dlq_only") in ("1", "true", "on"),
        limit=limit,
        cursor=cursor,
    )


def _json_path(path: str | None) -> str | None:
    if path is not None:
        try:
            split_json_path(path)
        except ValueError as exc:
            raise SearchError("json_path", str(exc)) from None
    return path


def encode_cursor(timestamp_ms: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{timestamp_ms}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        timestamp, row_id = base64.urlsafe_b64decode(padded).decode().split(":")
        return int(timestamp), int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise SearchError("cursor", "not a cursor this server made") from None


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _look_ups(f: EventFilter) -> list[ColumnElement[bool]]:
    """The key and identity filters: each finds its few rows through a hash index."""
    conditions: list[ColumnElement[bool]] = []
    if f.key is not None:
        conditions.append(key_equals(f.key.encode("utf-8")))
    for name in IDENTITY_FILTERS:
        value = getattr(f, name)
        if value is not None:
            conditions.append(identity_equals(name, value))
    return conditions


def _narrowing(f: EventFilter, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """A filter beside a key or identity look-up only narrows the rows it finds: so marked,
    SQLite's planner keeps to the look-up's index (collectors/index/identity.py)."""
    return narrowing_only(condition) if f.looks_up else condition


def _conditions(f: EventFilter, engine: Engine) -> list[ColumnElement[bool]]:
    c = events.c
    conditions: list[ColumnElement[bool]] = []
    if f.cluster:
        conditions.append(c.cluster == f.cluster)
    if f.topics:
        conditions.append(c.topic.in_(f.topics))
    if f.partition is not None:
        conditions.append(c.partition == f.partition)
    if f.time_from_ms is not None:
        conditions.append(c.timestamp_ms >= f.time_from_ms)
    if f.time_to_ms is not None:
        conditions.append(c.timestamp_ms <= f.time_to_ms)
    if f.offset_from is not None:
        conditions.append(c.offset >= f.offset_from)
    if f.offset_to is not None:
        conditions.append(c.offset <= f.offset_to)
    for column, value in ((c.event_type, f.event_type), (c.source, f.source)):
        if value is not None:
            conditions.append(column == value)
    if f.dlq_only:
        conditions.append(EVENTS_IS_DLQ)
    if f.text:
        conditions.append(_value_contains(engine, f.text))
    if f.json_path and f.json_value and _written_as_is(f.json_value):
        # The rows must contain the text (the field's value is checked in Python after;
        # see _RowCheck).
        conditions.append(_value_contains(engine, f.json_value))
    elif f.json_path:
        conditions.append(or_(c.decoded_value.is_not(None), c.content_type.contains("json")))
    if f.header_name:
        name_json = json.dumps(f.header_name, ensure_ascii=False)
        pattern = f"%[{_like_escape(name_json)},%"
        if engine.dialect.name == "postgresql":
            conditions.append(c.headers.ilike(pattern, escape="\\"))
        else:
            conditions.append(c.headers.like(pattern, escape="\\"))
    return _look_ups(f) + [_narrowing(f, condition) for condition in conditions]


def _value_contains(engine: Engine, needle: str) -> ColumnElement[bool]:
    """Case-sensitive substring test on the stored value, byte-wise (no LIKE on blobs), or
    on its decoded form (JSON text) for records a schema decoded."""
    raw = needle.encode("utf-8")
    in_value: ColumnElement[bool]
    if engine.dialect.name == "postgresql":
        clause = text("position(CAST(:needle AS bytea) IN events.value) > 0")
        in_value = clause.bindparams(bindparam("needle", raw, type_=LargeBinary))  # type: ignore[assignment]
        in_decoded = func.strpos(events.c.decoded_value, needle) > 0
    else:
        in_value = func.instr(events.c.value, literal(raw, LargeBinary)) > 0
        in_decoded = func.instr(events.c.decoded_value, needle) > 0
    return or_(in_value, and_(events.c.decoded_value.is_not(None), in_decoded))


class _RowCheck:
    """The filters SQL cannot decide, checked on each row in Python: a header's value
    (headers are JSON inside a text column) and a payload field at a JSON path. `columns`
    are what the checks read beyond the caller's; they are dropped from kept rows."""

    def __init__(self, f: EventFilter, columns: list[Any]) -> None:
        self.filter = f
        self.columns = columns

    @classmethod
    def of(cls, f: EventFilter, selected: list[Any]) -> _RowCheck | None:
        c = events.c
        needed = []
        if f.header_name is not None and f.header_value is not None:
            needed.append(c.headers)
        if f.json_path is not None:
            needed += [c.value, c.decoded_value]
        if not needed:
            return None
        names = {column.name for column in selected}
        return cls(f, [column for column in needed if column.name not in names])

    def keep(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        f = self.filter
        path = split_json_path(f.json_path) if f.json_path else None
        header = None
        if f.header_name is not None and f.header_value is not None:
            header = (f.header_name, f.header_value)
        kept = []
        for row in rows:
            if header is not None and not _header_matches(row["headers"], *header):
                continue
            if path is not None and not _field_matches(row, path, f.json_value):
                continue
            for column in self.columns:
                del row[column.name]
            kept.append(row)
        return kept


def _field_matches(row: Mapping[str, Any], path: tuple[str, ...], wanted: str | None) -> bool:
    """Whether the payload (its decoded form, else its JSON) has `wanted` at `path`: the
    same text, the same number, true/false/null; any value when `wanted` is None."""
    try:
        if row["decoded_value"] is not None:
            document = json.loads(row["decoded_value"])
        elif row["value"] and row["value"][:1] in b"{[ \t\r\n":
            document = json.loads(row["value"])
        else:
            return False
    except (ValueError, RecursionError):
        return False
    node = resolve_json_path(document, path)
    if wanted is None:
        return node is not None
    if isinstance(node, str):
        return node == wanted
    if isinstance(node, bool) or node is None:
        return json.dumps(node) == wanted
    if isinstance(node, int | float):
        try:
            return float(wanted) == node
        except ValueError:
            return False
    return False


def _written_as_is(value: str) -> bool:
    """Text any JSON writer puts down unchanged (no escapes); not a number, which can be
    written in several ways (1, 1.0, 1e0)."""
    if not PLAIN_TEXT.fullmatch(value):
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _header_matches(headers_json: str, name: str, value: str | None) -> bool:
    try:
        headers = json.loads(headers_json)
    except ValueError:
        return False
    wanted = name.lower()
    for entry in headers:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str):
            continue
        if entry[0].lower() != wanted:
            continue
        if value is None:
            return True
        shown = entry[1] if isinstance(entry[1], str) else None
        if shown is not None and value in shown:
            return True
    return False


@dataclass
class SearchResult:
    events: list[dict[str, Any]]
    next_cursor: str | None
    limit: int
    scan_capped_at: int | None  # set when a text/header filter scanned only the newest rows


def search_events(
    engine: Engine,
    f: EventFilter,
    *,
    text_scan_rows: int = TEXT_SCAN_ROWS,
    timeout_s: float | None = None,
) -> SearchResult:
    """The page of events matching `f`; StatementTimeout when the index takes longer than
    `timeout_s` (None: no limit)."""
    c = events.c
    scan_cap: int | None = None
    base = _conditions(replace(f, cursor=None), engine)
    with engine.connect() as connection, statement_deadline(connection, timeout_s):
        if f.needs_scan:
            newest = connection.execute(select(func.max(c.id))).scalar() or 0
            if newest > text_scan_rows:
                scan_cap = text_scan_rows
                base.append(_narrowing(f, c.id > newest - text_scan_rows))
        check = _RowCheck.of(f, LIST_COLUMNS)
        columns = LIST_COLUMNS + check.columns if check else LIST_COLUMNS
        page_size = f.limit + 1 if not check else max(200, (f.limit + 1) * 4)
        matches: list[dict[str, Any]] = []
        cursor = f.cursor
        # Some filters are checked in Python (_RowCheck), so a page may yield fewer matches
        # than asked: read further pages, a bounded number.
        for _ in range(1 if not check else 25):
            conditions = list(base)
            if cursor:
                timestamp, row_id = decode_cursor(cursor)
                after = or_(
                    c.timestamp_ms < timestamp, and_(c.timestamp_ms == timestamp, c.id < row_id)
                )
                conditions.append(_narrowing(f, after))
            query = (
                select(*columns)
                .where(*conditions)
                .order_by(c.timestamp_ms.desc(), c.id.desc())
                .limit(page_size)
            )
            rows = [dict(row._mapping) for row in connection.execute(query)]
            matches += check.keep(rows) if check else rows
            if len(matches) > f.limit or len(rows) < page_size:
                break
            cursor = encode_cursor(rows[-1]["timestamp_ms"], rows[-1]["id"])
    more = len(matches) > f.limit
    matches = matches[: f.limit]
    next_cursor = encode_cursor(matches[-1]["timestamp_ms"], matches[-1]["id"]) if more else None
    return SearchResult(matches, next_cursor, f.limit, scan_cap)


def get_event(
    engine: Engine, cluster: str, topic: str, partition: int, offset: int
) -> dict[str, Any] | None:
    c = events.c
    query = select(events).where(
        c.cluster == cluster, c.topic == topic, c.partition == partition, c.offset == offset
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return dict(row._mapping) if row else None


def newer_than(
    engine: Engine, f: EventFilter, after_id: int, limit: int = 200
) -> list[dict[str, Any]]:
    """Rows inserted after `after_id` that match (for the live tail), oldest first."""
    c = events.c
    conditions = [*_conditions(replace(f, cursor=None), engine), c.id > after_id]
    check = _RowCheck.of(f, LIST_COLUMNS)
    columns = LIST_COLUMNS + check.columns if check else LIST_COLUMNS
    query = select(*columns).where(*conditions).order_by(c.id).limit(limit)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    return check.keep(rows) if check else rows


def max_event_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.max(events.c.id))).scalar() or 0


def iter_matching(
    engine: Engine, f: EventFilter, columns: list[Any], batch_size: int = 5_000
) -> Iterator[list[dict[str, Any]]]:
    """Every event matching `f` (limit and cursor ignored), oldest indexed first, in batches.

    For jobs that act on a whole selection (replay, redrive of everything that matches).
    """
    c = events.c
    base = _conditions(replace(f, cursor=None), engine)
    check = _RowCheck.of(f, [*columns, c.id])
    wanted = [*columns, c.id] + (check.columns if check else [])
    after = 0
    while True:
        query = select(*wanted).where(*base, c.id > after).order_by(c.id).limit(batch_size)
        with engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        if not rows:
            return
        after = rows[-1]["id"]
        yield check.keep(rows) if check else rows
