"""Which schema ids each topic's records were written with: a batch hook of the tap
(collectors/index/writer.BatchHook) keeping the `schema_usage` table, one row per topic,
part (value or key) and schema id, with the first and last record time. (No count: a
record read again after a rebalance reaches the hooks twice, and min/max stay right.)"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func
from sqlalchemy.dialects import postgresql, sqlite

from collectors.index.event_row import EventTuple
from collectors.index.models import schema_usage_table
from collectors.index.writer import columns_getter

_COLUMNS = columns_getter("topic", "timestamp_ms", "schema_id", "key_schema_id")

UsageKey = tuple[str, str, int]  # (topic, part, schema id)


class SchemaUsageHook:
    def __init__(self) -> None:
        self._seen: dict[UsageKey, list[int]] = {}  # -> [first ms, last ms]

    def collect(self, cluster: str, rows: Sequence[EventTuple]) -> None:
        seen = self._seen
        for row in rows:
            topic, timestamp_ms, value_id, key_id = _COLUMNS(row)
            if value_id is None and key_id is None:
                continue
            for part, schema_id in (("value", value_id), ("key", key_id)):
                if schema_id is None:
                    continue
                entry = seen.get((topic, part, schema_id))
                if entry is None:
                    seen[(topic, part, schema_id)] = [timestamp_ms, timestamp_ms]
                else:
                    entry[0] = min(entry[0], timestamp_ms)
                    entry[1] = max(entry[1], timestamp_ms)

    def flush(self, connection: Connection, cluster: str) -> None:
        seen, self._seen = self._seen, {}
        if seen:
            record_usage(connection, cluster, seen)

    def discard(self) -> None:
        self._seen = {}


def record_usage(connection: Connection, cluster: str, seen: dict[UsageKey, list[int]]) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    table = schema_usage_table
    insert = dialect.insert(table)
    smallest = func.least if connection.dialect.name == "postgresql" else func.min
    greatest = func.greatest if connection.dialect.name == "postgresql" else func.max
    upsert = insert.on_conflict_do_update(
        index_elements=["cluster", "topic", "part", "schema_id"],
        set_={
            "first_seen_ms": smallest(table.c.first_seen_ms, insert.excluded.first_seen_ms),
            "last_seen_ms": greatest(table.c.last_seen_ms, insert.excluded.last_seen_ms),
        },
    )
    rows = [
        {"cluster": cluster, "topic": topic, "part": part, "schema_id": schema_id,
         "first_seen_ms": first, "last_seen_ms": last}
        for (topic, part, schema_id), (first, last) in sorted(seen.items())
    ]  # fmt: skip
    connection.execute(upsert, rows)
