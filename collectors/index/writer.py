"""Batch writes of events with their positions, in one transaction.

This is what makes ingest exactly-once: the rows of a batch and the positions after them
commit together, and the collector seeks to the stored positions when it is assigned a
partition. The unique index on the coordinates plus ON CONFLICT DO NOTHING is a second
line of defence (two collectors briefly owning a partition during a rebalance), and the
position only ever moves forward.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from collectors.index.models import events_table, positions_table

PositionKey = tuple[str, int]  # (topic, partition)

# Work derived from a batch (saga state, lineage edges, ...) that must commit with it:
# called inside the batch's transaction with the cluster name and the new rows.
BatchHook = Callable[[Connection, str, Sequence[Mapping[str, Any]]], None]

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
    rows: Sequence[Mapping[str, Any]],
    next_offsets: Mapping[PositionKey, int],
    now_ms: int,
    hooks: Sequence[BatchHook] = (),
) -> int:
    """Insert `rows`, run the hooks and advance positions atomically; return new rows."""
    inserted = 0
    events_insert = _insert(engine, events_table).on_conflict_do_nothing(
        index_elements=["cluster", "topic", "partition", "offset"]
    )
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
        for start in range(0, len(rows), CHUNK_ROWS):
            result = connection.execute(events_insert, list(rows[start : start + CHUNK_ROWS]))
            inserted += max(result.rowcount, 0)
        for hook in hooks:
            hook(connection, cluster, rows)
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
