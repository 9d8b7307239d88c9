"""PostgreSQL's time partitions of `events`: made ahead of the records, dropped whole.

On PostgreSQL `events` is partitioned by range of `timestamp_ms` (migration 0014), one
partition per UTC day (`events_p20261204`), plus a default partition for records whose
day has none (a producer's clock far off, or days before the index existed) and, in an
index made before partitioning, `events_unpartitioned` for everything before it. Why: a
retention round then drops a day of events with one statement, where deleting it row by
row costs as much as writing it did, and leaves the table's files full of holes.

Every retention round (collectors/index/retention.py) makes sure the days from the
retention cutoff to two days ahead have their partitions, and drops those wholly older
than the cutoff. Creating a partition for a day that already has records in the default
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
DEFAULT_PARTITION = "events_default"
UNPARTITIONED = "events_unpartitioned"  # an older index's events, attached by migration 0014
LOCK_TIMEOUT = "2s"
PARTITIONS_LOCK_KEY = 0x6576706172  # advisory lock of whoever changes partitions ("evpar")

_DAY_NAME = re.compile(r"events_p\d{8}")
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


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")
    ).scalar()
    return kind == "p"


def list_partitions(connection: Connection) -> list[Partition]:
    """The partitions of `events`, by their lower bound (the default one last)."""
    rows = connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass"
        )
    ).all()
    partitions = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            partitions.append(Partition(name, None, None, is_default=True))
        else:
            partitions.append(Partition(name, _bound(match["lo"]), _bound(match["hi"])))
    partitions.sort(key=lambda p: (p.is_default, -(2**63) if p.lo_ms is None else p.lo_ms))
    return partitions


def is_partition_name(name: str) -> bool:
    return name in (DEFAULT_PARTITION, UNPARTITIONED) or _DAY_NAME.fullmatch(name) is not None


def day_name(day_start_ms: int) -> str:
    return "events_p" + datetime.fromtimestamp(day_start_ms / 1000, UTC).strftime("%Y%m%d")


def _overlaps(partition: Partition, lo_ms: int, hi_ms: int) -> bool:
    if partition.is_default:
        return False
    below = partition.hi_ms is not None and partition.hi_ms <= lo_ms
    above = partition.lo_ms is not None and partition.lo_ms >= hi_ms
    return not (below or above)


def ensure_days(engine: Engine, from_ms: int, to_ms: int) -> list[str]:
    """Create the day partitions missing between from_ms and to_ms; return their names.

    Days already covered (by a day partition or the pre-partitioning one) are left alone.
    """
    first = from_ms // DAY_MS * DAY_MS
    made: list[str] = []
    with engine.begin() as connection:
        if not is_partitioned(connection):
            return made
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (PARTITIONS_LOCK_KEY,))
        existing = list_partitions(connection)
        for lo_ms in range(first, to_ms, DAY_MS):
            hi_ms = lo_ms + DAY_MS
            if any(_overlaps(partition, lo_ms, hi_ms) for partition in existing):
                continue
            name = day_name(lo_ms)
            _create_day(connection, name, lo_ms, hi_ms)
            existing.append(Partition(name, lo_ms, hi_ms))
            made.append(name)
    return made


def _create_day(connection: Connection, name: str, lo_ms: int, hi_ms: int) -> None:
    bounds = {"lo": lo_ms, "hi": hi_ms}
    strays = connection.execute(
        text(
            f"SELECT 1 FROM {DEFAULT_PARTITION}"
            " WHERE timestamp_ms >= :lo AND timestamp_ms < :hi LIMIT 1"
        ),
        bounds,
    ).first()
    if strays is None:
        connection.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ({lo_ms}) TO ({hi_ms})"
        )
        return
    # The day's records in the default partition move into its new partition, all under
    # the default partition's lock so that no record of that day lands there meanwhile.
    connection.exec_driver_sql(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
    connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)")
    moved = connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION}"
            " WHERE timestamp_ms >= :lo AND timestamp_ms < :hi RETURNING *)"
            f" INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    ).rowcount
    connection.exec_driver_sql(
        f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ({lo_ms}) TO ({hi_ms})"
    )
    log.info("partition %s created with %d events from the default partition", name, moved)


def drop_before(engine: Engine, cutoff_ms: int) -> tuple[list[str], int]:
    """Drop the partitions whose every record is older than cutoff_ms.

    Returns their names and about how many events they held (PostgreSQL's estimate from
    its last ANALYZE, the exact count when it has none: counting a day of events exactly
    would take longer than dropping it).
    """
    dropped: list[str] = []
    events = 0
    with engine.connect() as connection:
        if not is_partitioned(connection):
            return dropped, events
        old = [
            partition
            for partition in list_partitions(connection)
            if not partition.is_default and partition.hi_ms is not None
            and partition.hi_ms <= cutoff_ms
        ]  # fmt: skip
    for partition in old:
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                events += _estimated_rows(connection, partition.name)
                connection.exec_driver_sql(f"DROP TABLE {partition.name}")
        except OperationalError as error:  # the lock was not had in time: next round
            log.warning("partition %s not dropped yet: %s", partition.name, error.orig)
            continue
        dropped.append(partition.name)
        log.info("partition %s dropped (records older than the retention cutoff)",
                 partition.name)  # fmt: skip
    return dropped, events


def _estimated_rows(connection: Connection, name: str) -> int:
    estimate = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar()
    if estimate is not None and estimate >= 0:
        return int(estimate)
    return int(connection.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())


def maintain(engine: Engine, cutoff_ms: int | None, now_ms: int | None = None) -> tuple[int, int]:
    """One round: the days from the cutoff (or today) to DAYS_AHEAD ahead exist, and the
    partitions older than the cutoff are gone. Returns (partitions dropped, their events)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    start_ms = now_ms if cutoff_ms is None else max(cutoff_ms, 0)
    try:
        ensure_days(engine, start_ms, now_ms + (DAYS_AHEAD + 1) * DAY_MS)
    except OperationalError as error:
        log.warning("partitions not created yet: %s", error.orig)
    if cutoff_ms is None:
        return 0, 0
    dropped, events = drop_before(engine, cutoff_ms)
    return len(dropped), events
