"""Batch writes of events with their positions, in one transaction.

This is what makes ingest exactly-once: the rows of a batch and the positions after them
commit together, and the collector seeks to the stored positions when it is assigned a
partition. The unique index on the coordinates plus ON CONFLICT DO NOTHING is a second
line of defence (two collectors briefly owning a partition during a rebalance), and the
position only ever moves forward.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from collectors.index.models import events_table, positions_table

PositionKey = tuple[str, int]  # (topic, partition)

# Work derived from a batch (saga state, lineage edges, ...) that must commit with it:
# called inside the batch's transaction with the cluster name and the new rows.
BatchHook = Callable[[Connection, str, Sequence[Mapping[str, Any]]], None]

# The hot path hands rows to the driver as tuples in this column order: no per-row
# processing by SQLAlchemy (it costs about as much as SQLite's own insert).
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in events_table.c if c.name != "id")
COLUMN_INDEX = {name: i for i, name in enumerate(EVENT_COLUMNS)}
EventTuple = tuple[Any, ...]


class RowView(Mapping[str, Any]):
    """Read-only mapping over an event tuple, for batch hooks."""

    __slots__ = ("_values",)

    def __init__(self, values: EventTuple) -> None:
        self._values = values

    def __getitem__(self, name: str) -> Any:
        return self._values[COLUMN_INDEX[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(EVENT_COLUMNS)

    def __len__(self) -> int:
        return len(EVENT_COLUMNS)


def _insert_events_sql(dialect: str) -> str:
    marker = "%s" if dialect == "postgresql" else "?"
    columns = ", ".join(f'"{name}"' for name in EVENT_COLUMNS)
    values = ", ".join(marker for _ in EVENT_COLUMNS)
    return (
        f"INSERT INTO events ({columns}) VALUES ({values}) "
        'ON CONFLICT ("cluster", "topic", "partition", "offset") DO NOTHING'
    )


# SQLite caps the number of bound parameters per statement; executemany binds per row,
# so only the chunk size for memory matters here.
CHUNK_ROWS = 5_000


def key_hash(key: bytes | None) -> int | None:
    """A signed 64-bit hash of a record key: indexable whatever the key's size."""
    if key is None:
        return None
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _insert(engine: Engine, table: Any) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def write_batch(
    engine: Engine,
    cluster: str,
    rows: Sequence[EventTuple] | Sequence[Mapping[str, Any]],
    next_offsets: Mapping[PositionKey, int],
    now_ms: int,
    hooks: Sequence[BatchHook] = (),
) -> int:
    """Insert `rows`, run the hooks and advance positions atomically; return new rows.

    Rows are tuples in EVENT_COLUMNS order (the tap's hot path) or mappings by column name.
    """
    tuples: list[EventTuple] = [
        tuple(row[name] for name in EVENT_COLUMNS) if isinstance(row, Mapping) else row
        for row in rows
    ]
    inserted = 0
    events_sql = _insert_events_sql(engine.dialect.name)
    position_insert = _insert(engine, positions_table)
    greatest = func.greatest if engine.dialect.name == "postgresql" else func.max
    position_upsert = position_insert.on_conflict_do_update(
        index_elements=["cluster", "topic", "partition"],
        set_={
            "next_offset": greatest(
                positions_table.c.next_offset, position_insert.excluded.next_offset
            ),
            "updated_at_ms": position_insert.excluded.updated_at_ms,
        },
    )
    with engine.begin() as connection:
        for start in range(0, len(tuples), CHUNK_ROWS):
            chunk = tuples[start : start + CHUNK_ROWS]
            result = connection.exec_driver_sql(events_sql, chunk)
            inserted += max(result.rowcount, 0)
        if hooks:
            views = [RowView(values) for values in tuples]
            for hook in hooks:
                hook(connection, cluster, views)
        if next_offsets:
            connection.execute(
                position_upsert,
                [
                    {
                        "cluster": cluster,
                        "topic": topic,
                        "partition": partition,
                        "next_offset": offset,
                        "updated_at_ms": now_ms,
                    }
                    for (topic, partition), offset in next_offsets.items()
                ],
            )
    return inserted


def read_positions(
    engine: Engine, cluster: str, partitions: Sequence[PositionKey]
) -> dict[PositionKey, int]:
    """Stored next offsets for the given partitions (missing ones are absent)."""
    if not partitions:
        return {}
    wanted = set(partitions)
    topics = sorted({topic for topic, _ in partitions})
    query = select(
        positions_table.c.topic, positions_table.c.partition, positions_table.c.next_offset
    ).where(positions_table.c.cluster == cluster, positions_table.c.topic.in_(topics))
    with engine.connect() as connection:
        return {
            (topic, partition): offset
            for topic, partition, offset in connection.execute(query)
            if (topic, partition) in wanted
        }
