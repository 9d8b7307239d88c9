"""Look-ups of events by identity (event, correlation, causation, trace and saga id).

Why hashes: identity ids are mostly random (UUIDs, trace ids), and an index on random
text touches about one page per inserted row. `events` indexes a signed 64-bit hash of
each identity instead of the text: a quarter of the size, so a commit writes far fewer
pages (at 1M UUID-identified events a row costs 35 us instead of 48, docs/benchmarks.md).
A look-up matches the hash through the index, then the text itself, so a collision costs
a row read, never a wrong answer.

`saga_hash` is stored only when the saga id differs from the correlation id (most
sagas are identified by their correlation id, which is indexed already).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select, union_all

from collectors.index.models import IDENTITY_HASH_COLUMNS, events_table

HASH_COLUMNS = IDENTITY_HASH_COLUMNS


def text_hash(value: str | bytes | None) -> int | None:
    """A signed 64-bit hash (what BIGINT holds) of a text or bytes value; None stays None."""
    if value is None:
        return None
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identity_hashes(
    event_id: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    trace_id: str | None,
    saga_id: str | None,
) -> tuple[int | None, int | None, int | None, int | None, int | None]:
    """The hash columns of a row, in HASH_COLUMNS order."""
    return (
        text_hash(event_id),
        text_hash(correlation_id),
        text_hash(causation_id),
        text_hash(trace_id),
        None if saga_id == correlation_id else text_hash(saga_id),
    )


def identity_equals(name: str, value: str, cluster: str | None = None) -> ColumnElement[bool]:
    """Events whose identity `name` (a key of HASH_COLUMNS) is `value`, through its index;
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
    in_cluster = [] if cluster is None else [c.cluster == cluster]
    text_column = c[name]
    matches: Any = text_column == wanted[0] if len(wanted) == 1 else text_column.in_(wanted)
    if name != "saga_id":
        return and_(c[HASH_COLUMNS[name]].in_(hashes), matches, *in_cluster)
    # A saga id equal to the event's correlation id has no saga hash of its own. The two
    # indexes are searched as a union of row ids, the cluster test inside: next to an OR
    # of indexed terms, or to a cluster test, SQLite's planner (no statistics) prefers the
    # coordinates index and reads every event of the cluster.
    by_hash = union_all(
        select(c.id).where(c.saga_hash.in_(hashes), *in_cluster),
        select(c.id).where(c.correlation_hash.in_(hashes), *in_cluster),
    )
    return and_(c.id.in_(by_hash), matches)
