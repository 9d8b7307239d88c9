"""What the on-call overview (`/`) and the search box read: the recent dead letters per
topic, and what an id someone pastes names (an event, a correlation, a saga, a group...).
The other sections of the overview come from their areas' stores."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from collectors.index.lag_models import lag_groups_table
from collectors.index.models import EVENTS_IS_DLQ
from collectors.index.models import events_table as events
from collectors.index.saga_models import sagas_table
from console.stores import events as event_store
from console.stores.events import EventFilter
from console.web import urls

COORDINATES = re.compile(
    r"(?P<topic>[A-Za-z0-9._-]{1,249})/(?P<partition>\d{1,9})@(?P<offset>\d{1,18})"
)
TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


def dlq_arrivals(engine: Engine, since_ms: int) -> list[dict[str, Any]]:
    """Dead letters per topic that arrived since `since_ms`, the latest arrival first (what
    just started failing is what the on-call wants to see)."""
    c = events.c
    query = (
        select(c.cluster, c.topic, func.count().label("count"),
               func.max(c.timestamp_ms).label("newest_ms"))
        .where(EVENTS_IS_DLQ, c.timestamp_ms >= since_ms)
        .group_by(c.cluster, c.topic)
        .order_by(func.max(c.timestamp_ms).desc(), c.topic)
        .limit(10)
    )  # fmt: skip
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


@dataclass(frozen=True)
class Found:
    kind: str  # event, trace, correlation, saga, group, topic
    link: str


def resolve(engine: Engine, query: str) -> Found | None:
    """The page an id names, tried from the most specific reading to the loosest; None
    when the index knows nothing by that name."""
    text = query.strip()
    if not text:
        return None
    coordinates = COORDINATES.fullmatch(text)
    if coordinates:
        offset = int(coordinates["offset"])
        f = EventFilter(topics=(coordinates["topic"],), partition=int(coordinates["partition"]),
                        offset_from=offset, offset_to=offset, limit=1)  # fmt: skip
        rows = event_store.search_events(engine, f).events
        if rows:
            row = rows[0]
            return Found("event", urls.event(row["cluster"], row["topic"], row["partition"],
                                             row["offset"]))  # fmt: skip
    if TRACE_ID.fullmatch(text):
        return Found("trace", urls.trace(text.lower()))
    if event_store.search_events(engine, EventFilter(correlation_id=text, limit=1)).events:
        return Found("correlation", urls.trace(text))
    rows = event_store.search_events(engine, EventFilter(event_id=text, limit=1)).events
    if rows:
        row = rows[0]
        return Found("event", urls.event(row["cluster"], row["topic"], row["partition"],
                                         row["offset"]))  # fmt: skip
    with engine.connect() as connection:
        saga = connection.execute(
            select(sagas_table.c.cluster).where(sagas_table.c.saga_id == text).limit(1)
        ).first()
        group = connection.execute(
            select(lag_groups_table.c.cluster).where(lag_groups_table.c.group_id == text).limit(1)
        ).first()
    if saga is not None:
        return Found("saga", urls.saga(saga.cluster, text))
    if group is not None:
        return Found("group", urls.group(group.cluster, text))
    rows = event_store.search_events(engine, EventFilter(topics=(text,), limit=1)).events
    if rows:
        return Found("topic", urls.topic(rows[0]["cluster"], text))
    return None
