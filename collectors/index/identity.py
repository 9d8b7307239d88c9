"""Look-ups of events by identity (event, correlation, causation, trace and saga id).

Why hashes: identity ids are mostly random (UUIDs, trace ids), and an index on random
text touches about one page per inserted row. `events` indexes a signed 64-bit hash of
each identity instead of the text: a quarter of the size, so a commit writes far fewer
pages (at 1M UUID-identified events a row costs 35 us instead of 48, docs/benchmarks.md).
A look-up matches the hash through the index, then the text itself, so a collision costs
a row read, never a wrong answer.

On SQLite the hash indexes lead with the row's segment (`id / SEGMENT_ROWS`, collectors/
index/models.py) so that ingest only touches their newest part; a look-up therefore probes
each segment from the oldest row's to the newest's, a list the database derives from
min(id) and max(id) (both ends of the primary key) in a recursive CTE. On PostgreSQL the
day partitions already keep ingest in the newest part of each index, and a look-up probes
each partition's index once: the segments there would multiply the probes by the
partitions (2,500 of them at 10M events over 33 days: 14-16 ms a look-up against 4.6 ms,
docs/benchmarks.md).

`saga_hash` is stored only when the saga id differs from the correlation id (most
sagas are identified by their correlation id, which is indexed already).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.sqltypes import NullType
from sqlalchemy.sql.visitors import InternalTraversal

from collectors.index.models import IDENTITY_HASH_COLUMNS, SEGMENT_ROWS, events_table

# An empty 8-byte BLAKE2b state: copying it costs half of constructing one (the
# constructor parses its keyword arguments every time), and ingest hashes ~5 ids a record.
_EMPTY_HASH = hashlib.blake2b(digest_size=8)


def text_hash(value: str | bytes | None) -> int | None:
    """A signed 64-bit hash (what BIGINT holds) of a text or bytes value; None stays None.

    BLAKE2b with an 8-byte digest: the stored hashes depend on it, so changing it needs a
    migration that rehashes the index."""
    if value is None:
        return None
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    state = _EMPTY_HASH.copy()
    state.update(data)
    return int.from_bytes(state.digest(), "big", signed=True)


def search_key(key: bytes | None, decoded_key: str | None) -> bytes | None:
    """What a key look-up matches: the key's bytes, or the text of a decoded key (JSON)
    that is a string or an integer, so that an Avro key "order-7" is found as order-7."""
    if decoded_key is None:
        return key
    if decoded_key.startswith('"'):
        try:
            value = json.loads(decoded_key)
        except ValueError:
            return key
        return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else key
    if decoded_key.lstrip("-").isdigit():
        return decoded_key.encode()
    return key


def decoded_key_forms(key: bytes) -> list[str]:
    """The decoded_key texts that `search_key` maps to `key`."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return []
    forms = [json.dumps(text, ensure_ascii=False)]
    if text.lstrip("-").isdigit():
        forms.append(text)
    return forms


def identity_hashes(
    event_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    trace_id: str | None,
    saga_id: str | None,
) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    """The hash columns of a row, in IDENTITY_HASH_COLUMNS order."""
    return (
        text_hash(event_id),
        text_hash(correlation_id),
        text_hash(causation_id),
        text_hash(trace_id),
        None if saga_id == correlation_id else text_hash(saga_id),
    )


def segment_of(row_id: Any) -> ColumnElement[int]:
    """The segment expression of the hash indexes, written exactly as they declare it (a
    planner matches an indexed expression only when it is the same, literal included)."""
    segment: ColumnElement[int] = row_id.op("/")(literal_column(str(SEGMENT_ROWS)))
    return segment


def _segments() -> Select[tuple[int]]:
    bounds = events_table.alias("segment_bounds")  # never correlated with the outer events
    first = select(func.min(bounds.c.id)).scalar_subquery()
    last = select(func.max(bounds.c.id)).scalar_subquery()
    segments = select(segment_of(first).label("n")).cte("event_segments", recursive=True)
    segments = segments.union_all(select(segments.c.n + 1).where(segments.c.n < segment_of(last)))
    return select(segments.c.n)


# One object, so that a statement with several look-ups renders the CTE once.
ALL_SEGMENTS = _segments()


class _RenderedPerDialect(ColumnElement[bool]):
    """A condition whose SQL depends on the dialect: each subclass registers how it is
    rendered (`compiles`)."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("condition", InternalTraversal.dp_clauseelement)]

    def __init__(self, condition: ColumnElement[bool]) -> None:
        self.condition = condition


class _OnSegmentedIndexes(_RenderedPerDialect):
    """A condition that only SQLite's hash indexes need: PostgreSQL's are per day
    partition, led by the hash alone, and the condition renders as TRUE there."""

    inherit_cache = True
    # Untyped: SQLite would get a Boolean-typed element as `(...) = 1`, which its planner
    # does not match with the index expression.
    type = NullType()  # type: ignore[assignment]


@compiles(_OnSegmentedIndexes)
def _render_true(element: _OnSegmentedIndexes, compiler: Any, **kw: Any) -> str:
    return "TRUE"


@compiles(_OnSegmentedIndexes, "sqlite")
def _render_segments(element: _OnSegmentedIndexes, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.condition, **kw))


def hashed_in(hash_column: Any, hashes: list[int | None]) -> ColumnElement[bool]:
    """Rows whose `hash_column` (one of the hash indexes) is one of `hashes`."""
    in_segments = _OnSegmentedIndexes(segment_of(events_table.c.id).in_(ALL_SEGMENTS))
    return and_(in_segments, hash_column.in_(hashes))


def key_equals(key: bytes) -> ColumnElement[bool]:
    """Events whose record key is `key`, through the key hash index."""
    c = events_table.c
    forms = decoded_key_forms(key)
    same = or_(c.key == key, c.decoded_key.in_(forms)) if forms else c.key == key
    return and_(hashed_in(c.key_hash, [text_hash(key)]), same)


class _Unselective(_RenderedPerDialect):
    """A condition SQLite's planner is told holds for nearly every row (narrowing_only)."""

    inherit_cache = True


@compiles(_Unselective)
def _render_condition(element: _Unselective, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.condition, **kw))


@compiles(_Unselective, "sqlite")
def _render_sqlite_likelihood(element: _Unselective, compiler: Any, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.condition, **kw)}, 0.99)"


def narrowing_only(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """`condition`, marked as one that only narrows rows an identity look-up finds.

    Why: SQLite plans without statistics and takes any equality on an indexed column for
    ten rows. Next to `cluster = ?` (the first column of the coordinates index), a time
    range or a row-id bound it then estimates the segment-by-segment hash look-up as the
    dearer one, and reads a whole cluster or time range instead. Marked, the condition is
    rendered as `likelihood(condition, 0.99)` on SQLite; PostgreSQL has statistics and
    gets it as it is.
    """
    return _Unselective(condition)


def identity_equals(name: str, value: str, cluster: str | None = None) -> ColumnElement[bool]:
    """Events whose identity `name` (a key of IDENTITY_HASH_COLUMNS) is `value`, through its index;
    only those of `cluster` when given."""
    return identity_in(name, [value], cluster)


def identity_in(
    name: str, values: Iterable[str], cluster: str | None = None
) -> ColumnElement[bool]:
    """Events whose identity `name` is one of `values`, through its hash index; only those
    of `cluster` when given."""
    wanted = sorted(set(values))
    if not wanted:
        return false()
    c = events_table.c
    hashes = [text_hash(value) for value in wanted]
    in_cluster = [] if cluster is None else [narrowing_only(c.cluster == cluster)]
    text_column = c[name]
    matches: Any = text_column == wanted[0] if len(wanted) == 1 else text_column.in_(wanted)
    if name != "saga_id":
        return and_(hashed_in(c[IDENTITY_HASH_COLUMNS[name]], hashes), matches, *in_cluster)
    # A saga id equal to the event's correlation id has no saga hash of its own. The two
    # indexes are searched as a union of row ids, the cluster test inside: next to an OR
    # of indexed terms, or to a cluster test, SQLite's planner (no statistics) prefers the
    # coordinates index and reads every event of the cluster.
    by_hash = union_all(
        select(c.id).where(hashed_in(c.saga_hash, hashes), *in_cluster),
        select(c.id).where(hashed_in(c.correlation_hash, hashes), *in_cluster),
    )
    return and_(c.id.in_(by_hash), matches)
