"""The dead-letter queues' store: every DLQ topic with counts and ages, one DLQ's messages
grouped by error and by original topic.

DLQ records are the events the collector marked `is_dlq` (by topic name pattern or by
Spring Kafka, Kafka Connect or generic dead-letter headers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from typing_extensions import TypedDict

from collectors.index.models import EVENTS_IS_DLQ, events_table
from console.stores import events as event_store
from console.stores import jobs

PAGE_SIZE = 100
GROUPS_SHOWN = 50


class DlqTopic(TypedDict):
    cluster: str
    topic: str
    count: int
    oldest_ms: int
    newest_ms: int
    oldest_age_s: float
    newest_age_s: float


class ErrorGroup(TypedDict):
    error_class: str | None
    error_message: str | None
    count: int
    newest_ms: int


class OriginalGroup(TypedDict):
    original_topic: str | None
    count: int


@dataclass
class DlqOverview:
    by_error: list[ErrorGroup]
    by_original: list[OriginalGroup]
    messages: list[dict[str, Any]]  # event list rows, plus `redrive` and `age_s`
    total: int


def dlq_topics(engine: Engine) -> list[DlqTopic]:
    c = events_table.c
    query = (
        select(c.cluster, c.topic, func.count().label("count"),
               func.min(c.timestamp_ms).label("oldest_ms"),
               func.max(c.timestamp_ms).label("newest_ms"))
        .where(EVENTS_IS_DLQ)
        .group_by(c.cluster, c.topic)
        .order_by(c.cluster, c.topic)
    )  # fmt: skip
    now = time.time() * 1000
    with engine.connect() as connection:
        rows = list(connection.execute(query))
    return [
        DlqTopic(
            cluster=row.cluster,
            topic=row.topic,
            count=row._mapping["count"],
            oldest_ms=row.oldest_ms,
            newest_ms=row.newest_ms,
            oldest_age_s=(now - row.oldest_ms) / 1000,
            newest_age_s=(now - row.newest_ms) / 1000,
        )
        for row in rows
    ]


def dlq_overview(
    engine: Engine, cluster: str, topic: str, error_class: str | None, original: str | None
) -> DlqOverview:
    c = events_table.c
    base = [EVENTS_IS_DLQ, c.cluster == cluster, c.topic == topic]
    chosen = list(base)
    if error_class:
        chosen.append(c.dlq_error_class == error_class)
    if original:
        chosen.append(c.dlq_original_topic == original)
    message = func.substr(c.dlq_error_message, 1, 200)
    with engine.connect() as connection:
        by_error = [
            ErrorGroup(
                error_class=r.error_class,
                error_message=r.error_message,
                count=r._mapping["count"],
                newest_ms=r.newest_ms,
            )
            for r in connection.execute(
                select(
                    c.dlq_error_class.label("error_class"),
                    message.label("error_message"),
                    func.count().label("count"),
                    func.max(c.timestamp_ms).label("newest_ms"),
                )
                .where(*base)
                .group_by(c.dlq_error_class, message)
                .order_by(func.count().desc())
                .limit(GROUPS_SHOWN)
            )
        ]
        by_original = [
            OriginalGroup(original_topic=r.original_topic, count=r._mapping["count"])
            for r in connection.execute(
                select(c.dlq_original_topic.label("original_topic"), func.count().label("count"))
                .where(*base)
                .group_by(c.dlq_original_topic)
                .order_by(func.count().desc())
                .limit(GROUPS_SHOWN)
            )
        ]
        messages = [
            dict(r._mapping)
            for r in connection.execute(
                select(*event_store.LIST_COLUMNS)
                .where(*chosen)
                .order_by(c.timestamp_ms.desc(), c.id.desc())
                .limit(PAGE_SIZE)
            )
        ]
        total = connection.execute(select(func.count()).where(*chosen)).scalar() or 0
    states = jobs.redrive_states(
        engine, cluster, [(m["topic"], m["partition"], m["offset"]) for m in messages]
    )
    now = time.time() * 1000
    for m in messages:
        m["redrive"] = states.get((m["topic"], m["partition"], m["offset"]))
        m["age_s"] = (now - m["timestamp_ms"]) / 1000
    return DlqOverview(by_error, by_original, messages, total)


@dataclass
class DlqMessage:
    """One dead letter with its redrive state and history, and its original record."""

    row: dict[str, Any]
    redrive: jobs.RedriveState | None
    history: list[jobs.RedriveRound]
    original: dict[str, Any] | None


def dlq_message(
    engine: Engine, cluster: str, topic: str, partition: int, offset: int
) -> DlqMessage | None:
    row = event_store.get_event(engine, cluster, topic, partition, offset)
    if row is None or not row["is_dlq"]:
        return None
    coords = (topic, partition, offset)
    status = jobs.redrive_states(engine, cluster, [coords]).get(coords)
    history = jobs.redrive_history(engine, cluster, row)
    original = None
    if row["dlq_original_topic"] and row["dlq_original_offset"] is not None:
        original = event_store.get_event(
            engine, cluster, row["dlq_original_topic"], row["dlq_original_partition"] or 0,
            row["dlq_original_offset"],
        )  # fmt: skip
    return DlqMessage(row, status, history, original)
