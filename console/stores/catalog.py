"""The event catalog's SQL: which event types the index saw in a window, on which topics,
from which producers, how often; sample payloads of one type; the saga types it is part of.

Every query is bounded: by the window (the timestamp index), by the number of types
listed, by the samples read. Dead letters are left out: a copy in a DLQ is not where its
type lives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, and_, func, select

from collectors.index.models import events_table, schema_usage_table
from collectors.index.saga_models import sagas_table

MAX_TYPES = 500
MAX_SAMPLES = 50
MAX_SAGA_TYPES = 20
MAX_DRIFT_SAMPLES = 400

events = events_table
sagas = sagas_table

P = ParamSpec("P")
T = TypeVar("T")


def read(engine: Engine, query: Callable[Concatenate[Connection, P], T], *args: P.args,
         **kwargs: P.kwargs) -> T:  # fmt: skip
    """One of the queries below on a connection of its own: the alert sources run several
    on one connection, a page runs each where it needs it."""
    with engine.connect() as connection:
        return query(connection, *args, **kwargs)


@dataclass
class TypeSeen:
    cluster: str
    event_type: str
    count: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    topics: dict[str, int] = field(default_factory=dict)  # topic -> records
    producers: dict[str, int] = field(default_factory=dict)  # source -> records


def types_seen(
    connection: Connection, since_ms: int, cluster: str | None = None, event_type: str | None = None
) -> list[TypeSeen]:
    """Event types with their topics and producers since `since_ms`, most records first."""
    c = events.c
    conditions = [c.timestamp_ms >= since_ms, c.event_type.is_not(None), c.is_dlq.is_(False)]
    if cluster:
        conditions.append(c.cluster == cluster)
    if event_type is not None:
        conditions.append(c.event_type == event_type)
    query = (
        select(c.cluster, c.event_type, c.topic, c.source, func.count().label("n"),
               func.min(c.timestamp_ms).label("first"), func.max(c.timestamp_ms).label("last"))
        .where(and_(*conditions))
        .group_by(c.cluster, c.event_type, c.topic, c.source)
    )  # fmt: skip
    rows = connection.execute(query).all()
    found: dict[tuple[str, str], TypeSeen] = {}
    for row in rows:
        key = (row.cluster, row.event_type)
        seen = found.setdefault(key, TypeSeen(*key))
        seen.count += row.n
        seen.first_ms = row.first if seen.first_ms is None else min(seen.first_ms, row.first)
        seen.last_ms = row.last if seen.last_ms is None else max(seen.last_ms, row.last)
        seen.topics[row.topic] = seen.topics.get(row.topic, 0) + row.n
        if row.source:
            seen.producers[row.source] = seen.producers.get(row.source, 0) + row.n
    ordered = sorted(found.values(), key=lambda t: (-t.count, t.cluster, t.event_type))
    return ordered[:MAX_TYPES]


def samples(
    connection: Connection, cluster: str, event_type: str, since_ms: int, limit: int = MAX_SAMPLES
) -> list[dict[str, Any]]:
    """The newest records of the type (coordinates and payload columns), newest first."""
    c = events.c
    query = (
        select(c.cluster, c.topic, c.partition, c.offset, c.timestamp_ms, c.value,
               c.decoded_value, c.content_type, c.decode_state)
        .where(c.cluster == cluster, c.event_type == event_type, c.timestamp_ms >= since_ms,
               c.is_dlq.is_(False))
        .order_by(c.timestamp_ms.desc())
        .limit(min(limit, MAX_SAMPLES))
    )  # fmt: skip
    return [dict(row._mapping) for row in connection.execute(query)]


def saga_types(connection: Connection, cluster: str, event_type: str, since_ms: int) -> list[str]:
    """The saga types whose sagas had an event of this type."""
    c, s = events.c, sagas.c
    query = (
        select(s.saga_type)
        .distinct()
        .select_from(events.join(sagas, and_(s.cluster == c.cluster, s.saga_id == c.saga_id)))
        .where(c.cluster == cluster, c.event_type == event_type, c.timestamp_ms >= since_ms,
               c.saga_id.is_not(None), s.saga_type.is_not(None))
        .limit(MAX_SAGA_TYPES)
    )  # fmt: skip
    return sorted(str(name) for (name,) in connection.execute(query))


def drift_samples(
    connection: Connection,
    cluster: str,
    event_type: str,
    since_ms: int,
    limit: int = MAX_DRIFT_SAMPLES,
) -> list[dict[str, Any]]:
    """The newest MAX_DRIFT_SAMPLES records of the type, oldest first, for shape changes."""
    c = events.c
    query = (
        select(c.cluster, c.topic, c.partition, c.offset, c.timestamp_ms, c.value,
               c.decoded_value)
        .where(c.cluster == cluster, c.event_type == event_type, c.timestamp_ms >= since_ms,
               c.is_dlq.is_(False))
        .order_by(c.timestamp_ms.desc(), c.id.desc())
        .limit(min(limit, MAX_DRIFT_SAMPLES))
    )  # fmt: skip
    rows = [dict(row._mapping) for row in connection.execute(query)]
    return rows[::-1]


def schemas_in_use(connection: Connection, cluster: str, topics: list[str]) -> list[dict[str, Any]]:
    """Per topic, the registry schema ids its values and keys were written with, and when."""
    u = schema_usage_table.c
    query = (
        select(u.topic, u.part, u.schema_id, u.first_seen_ms, u.last_seen_ms)
        .where(u.cluster == cluster, u.topic.in_(topics[:50]))
        .order_by(u.topic, u.part, u.first_seen_ms)
        .limit(200)
    )  # fmt: skip
    return [dict(row._mapping) for row in connection.execute(query)]
