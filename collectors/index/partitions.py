"""PostgreSQL's time partitions of `events` and `spans`: made ahead, dropped whole.

On PostgreSQL `events` is partitioned by range of `timestamp_ms` (migration 0014) and
`spans` by range of `start_ns` (0015), one partition per UTC day (`events_p20261204`,
`spans_p20261204`), plus a default partition for rows whose day has none (a producer's
clock far off, or days before the index existed) and, in an index made before
partitioning, `<table>_unpartitioned` for everything before it. Why: a retention round
then drops a day with one statement, where deleting it row by row costs as much as
writing it did, and leaves the table's files full of holes. A spans partition takes the
span links of its spans with it.

Every retention round (collectors/index/retention.py) makes sure the days from the
retention cutoff to two days ahead have their partitions, and drops those wholly older
than the cutoff. Creating a partition for a day that already has rows in the default
partition moves them into it first. Both take the table's lock for a moment: they give up
after LOCK_TIMEOUT and are tried again at the next round rather than hold up the writers.
SQLite has no partitions: its retention deletes in chunks.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

log = logging.getLogger("eventscope.partitions")

DAY_MS = 86_400_000
DAYS_AHEAD = 2  # partitions exist this many days past today
LOCK_TIMEOUT = "2s"
PARTITIONS_LOCK_KEY = 0x6576706172  # advisory lock of whoever changes partitions ("evpar")


@dataclass(frozen=True)
class Table:
    """A table partitioned by day, and the column its days are read from."""

    name: str
    column: str
    per_ms: int  # the column's units in a millisecond

    @property
    def default(self) -> str:
        return f"{self.name}_default"

    @property
    def unpartitioned(self) -> str:  # an older index's rows, attached by its migration
        return f"{self.name}_unpartitioned"


EVENTS = Table("events", "timestamp_ms", 1)
SPANS = Table("spans", "start_ns", 1_000_000)
TABLES = (EVENTS, SPANS)

_DAY_NAME = re.compile(r"(events|spans)_p\d{8}")
_BOUND = re.compile(r"FOR VALUES FROM \((?P<lo>[^)]*)\) TO \((?P<hi>[^)]*)\)")


@dataclass(frozen=True)
class Partition:
    name: str
    lo_ms: int | None  # None: MINVALUE, or the default partition
    hi_ms: int | None  # None: MAXVALUE, or the default partition
    is_default: bool = False


def _bound(text_value: str) -> int | None:
    value = text_value.strip().strip("'")
    return None if value in ("MINVALUE", "MAXVALUE") else int(value)


def is_partitioned(connection: Connection, table: Table = EVENTS) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"),
        {"table": table.name},
    ).scalar()
    return kind == "p"


def list_partitions(connection: Connection, table: Table = EVENTS) -> list[Partition]:
    """The partitions of `table`, by their lower bound in ms (the default one last)."""
    rows = connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": table.name},
    ).all()
    partitions = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            partitions.append(Partition(name, None, None, is_default=True))
        else:
            lo, hi = _bound(match["lo"]), _bound(match["hi"])
            partitions.append(Partition(
                name, None if lo is None else lo // table.per_ms,
                None if hi is None else hi // table.per_ms,
            ))  # fmt: skip
    partitions.sort(key=lambda p: (p.is_default, -(2**63) if p.lo_ms is None else p.lo_ms))
    return partitions


def is_partition_name(name: str) -> bool:
    if any(name in (table.default, table.unpartitioned) for table in TABLES):
        return True
    return _DAY_NAME.fullmatch(name) is not None


def day_name(day_start_ms: int, table: Table = EVENTS) -> str:
    day = datetime.fromtimestamp(day_start_ms / 1000, UTC).strftime("%Y%m%d")
    return f"{table.name}_p{day}"


def _overlaps(partition: Partition, lo_ms: int, hi_ms: int) -> bool:
    if partition.is_default:
        return False
    below = partition.hi_ms is not None and partition.hi_ms <= lo_ms
    above = partition.lo_ms is not None and partition.lo_ms >= hi_ms
    return not (below or above)


def ensure_days(engine: Engine, from_ms: int, to_ms: int, table: Table = EVENTS) -> list[str]:
    """Create the day partitions of `table` missing between from_ms and to_ms; return
    their names. Days already covered (by a day partition or the pre-partitioning one)
    are left alone."""
    first = from_ms // DAY_MS * DAY_MS
    made: list[str] = []
    with engine.begin() as connection:
        if not is_partitioned(connection, table):
            return made
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (PARTITIONS_LOCK_KEY,))
        existing = list_partitions(connection, table)
        for lo_ms in range(first, to_ms, DAY_MS):
            hi_ms = lo_ms + DAY_MS
            if any(_overlaps(partition, lo_ms, hi_ms) for partition in existing):
                continue
            name = day_name(lo_ms, table)
            _create_day(connection, table, name, lo_ms * table.per_ms, hi_ms * table.per_ms)
            existing.append(Partition(name, lo_ms, hi_ms))
            made.append(name)
    return made


def _create_day(connection: Connection, table: Table, name: str, lo: int, hi: int) -> None:
    """Partition `name` of `table` for [lo, hi) in the table's own units."""
    in_day = f"{table.column} >= {lo} AND {table.column} < {hi}"
    strays = connection.exec_driver_sql(
        f"SELECT 1 FROM {table.default} WHERE {in_day} LIMIT 1"
    ).first()
    bounds = f"FOR VALUES FROM ({lo}) TO ({hi})"
    if strays is None:
        connection.exec_driver_sql(f"CREATE TABLE {name} PARTITION OF {table.name} {bounds}")
        return
    # The day's rows in the default partition move into its new partition, all under the
    # default partition's lock so that no row of that day lands there meanwhile.
    connection.exec_driver_sql(f"LOCK TABLE {table.default} IN ACCESS EXCLUSIVE MODE")
    connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table.name} INCLUDING DEFAULTS)")
    moved = connection.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {table.default} WHERE {in_day} RETURNING *)"
        f" INSERT INTO {name} SELECT * FROM moved"
    ).rowcount
    connection.exec_driver_sql(f"ALTER TABLE {table.name} ATTACH PARTITION {name} {bounds}")
    log.info("partition %s created with %d rows from the default partition", name, moved)


def drop_before(engine: Engine, cutoff_ms: int, table: Table = EVENTS) -> tuple[list[str], int]:
    """Drop the partitions of `table` whose every row is older than cutoff_ms (a spans
    partition with its spans' links).

    Returns their names and about how many rows they held (PostgreSQL's estimate from its
    last ANALYZE, the exact count when it has none: counting a day of events exactly would
    take longer than dropping it).
    """
    dropped: list[str] = []
    rows = 0
    with engine.connect() as connection:
        if not is_partitioned(connection, table):
            return dropped, rows
        old = [
            partition
            for partition in list_partitions(connection, table)
            if not partition.is_default and partition.hi_ms is not None
            and partition.hi_ms <= cutoff_ms
        ]  # fmt: skip
    for partition in old:
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                rows += _estimated_rows(connection, partition.name)
                if table is SPANS:
                    connection.exec_driver_sql(
                        f"DELETE FROM span_links l USING {partition.name} s"
                        " WHERE l.trace_id = s.trace_id AND l.span_id = s.span_id"
                    )
                connection.exec_driver_sql(f"DROP TABLE {partition.name}")
        except OperationalError as error:  # the lock was not had in time: next round
            log.warning("partition %s not dropped yet: %s", partition.name, error.orig)
            continue
        dropped.append(partition.name)
        log.info("partition %s dropped (rows older than the retention cutoff)",
                 partition.name)  # fmt: skip
    return dropped, rows


def _estimated_rows(connection: Connection, name: str) -> int:
    estimate = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar()
    if estimate is not None and estimate >= 0:
        return int(estimate)
    return int(connection.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())


@dataclass
class Maintained:
    partitions: int = 0  # dropped, of both tables
    events: int = 0  # in the events partitions dropped (an estimate)
    spans: int = 0  # in the spans partitions dropped (an estimate)


def maintain(engine: Engine, cutoff_ms: int | None, now_ms: int | None = None) -> Maintained:
    """One round for both tables: the days from the cutoff (or today) to DAYS_AHEAD ahead
    exist, and the partitions older than the cutoff are gone."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    start_ms = now_ms if cutoff_ms is None else max(cutoff_ms, 0)
    result = Maintained()
    for table in TABLES:
        try:
            ensure_days(engine, start_ms, now_ms + (DAYS_AHEAD + 1) * DAY_MS, table)
        except OperationalError as error:
            log.warning("%s partitions not created yet: %s", table.name, error.orig)
        if cutoff_ms is not None:
            dropped, rows = drop_before(engine, cutoff_ms, table)
            result.partitions += len(dropped)
            if table is SPANS:
                result.spans += rows
            else:
                result.events += rows
    return result
