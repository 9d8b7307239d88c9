"""Batch writes of events with their positions, in one transaction (group commit).

This is what makes ingest exactly-once: the rows of a batch and the positions after them
commit together, and the collector seeks to the stored positions when it is assigned a
partition. The unique index on the coordinates is a second line of defence (two
collectors briefly owning a partition during a rebalance): a row already indexed is
skipped by ON CONFLICT DO NOTHING, or on PostgreSQL, where rows not indexed yet are copied
without that rule, makes the transaction fail and be read again. The position only ever
moves forward.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from collectors.index.engine import is_sqlite
from collectors.index.event_row import COLUMN_INDEX, EVENT_COLUMNS, EventTuple, event_row
from collectors.index.models import events_table, positions_table

PositionKey = tuple[str, int]  # (topic, partition)
_CLUSTER, _TOPIC, _PARTITION, _OFFSET, _TIME = (
    COLUMN_INDEX[name] for name in ("cluster", "topic", "partition", "offset", "timestamp_ms")
)


class BatchHook(Protocol):
    """Work derived from the rows (saga state, ...) that must commit with them.

    `collect` sees the rows of every batch added, as tuples in EVENT_COLUMNS order (it keeps
    what it needs, not the rows; `columns_getter` reads them);
    `flush` writes what was collected since the last flush inside the open transaction: at
    the latest just before it commits, earlier when the writer has nothing else to do
    (`BatchWriter.prepare`); `discard` forgets what was collected when the transaction is
    rolled back. Why per commit rather than per batch: the events of one saga arrive close
    together but on different partitions, hence in different batches of the same commit,
    and its state is then read, derived and written once instead of once per batch. A hook
    holds what it collected until its writer flushes, so each writer needs hook objects of
    its own.
    """

    def collect(self, cluster: str, rows: Sequence[EventTuple]) -> None: ...

    def flush(self, connection: Connection, cluster: str) -> None: ...

    def discard(self) -> None: ...


def columns_getter(*names: str) -> Callable[[EventTuple], tuple[Any, ...]]:
    """A function giving the named columns of an event tuple as a tuple, for hooks that
    read every row of a batch."""
    if len(names) < 2:
        raise ValueError("columns_getter needs two names or more")
    return operator.itemgetter(*(COLUMN_INDEX[name] for name in names))


# PostgreSQL: rows go in by binary COPY (BatchWriter._copy). Why: a row costs the server a
# fraction of what a row of an INSERT costs (no statement per row, no parameter per
# value), and the client sends each value in binary: 21-27 us a row against 48 us with
# executemany (docs/benchmarks.md). A batch none of whose records is indexed yet is copied
# straight into `events`; otherwise into a temporary stage, then into `events` by one
# INSERT .. SELECT that applies the conflict rule, after which the stage is emptied
# (TRUNCATE: faster than a DELETE .. RETURNING feeding the INSERT). The stage lives in
# the connection, is made the first time a transaction needs it, empties itself at every
# commit and is seen by no other session.
_STAGE_TABLE = "eventscope_events_stage"
_COLUMNS = ", ".join(f'"{name}"' for name in EVENT_COLUMNS)
_PG_COPY_SQL = f"COPY events ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_PG_STAGE_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE_TABLE} ON COMMIT DELETE ROWS"
    f" AS SELECT {_COLUMNS} FROM events WITH NO DATA"
)
_PG_COPY_STAGE_SQL = f"COPY {_STAGE_TABLE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_PG_MOVE_SQL = (
    f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM {_STAGE_TABLE} "
    # ux_events_record: the coordinates and the time partitions' key
    'ON CONFLICT ("cluster", "topic", "partition", "offset", "timestamp_ms") DO NOTHING'
)
_PG_EMPTY_STAGE_SQL = f"TRUNCATE {_STAGE_TABLE}"


def _insert_events_sql() -> str:
    """SQLite's INSERT of one row (executemany)."""
    values = ", ".join("?" for _ in EVENT_COLUMNS)
    return (
        f"INSERT INTO events ({_COLUMNS}) VALUES ({values}) "
        'ON CONFLICT ("cluster", "topic", "partition", "offset") DO NOTHING'
    )


# Whether any row of a batch is in the index already: for each (topic, partition) of the
# batch, its range of offsets, within the batch's range of timestamps (a record has one
# timestamp, and the range skips the other days' partitions).
_PG_ANY_INDEXED_SQL = (
    "SELECT 1 FROM unnest(%s::text[], %s::text[], %s::int[], %s::bigint[], %s::bigint[])"
    " AS b(cluster, topic, part, lo, hi) JOIN events e ON e.cluster = b.cluster"
    ' AND e.topic = b.topic AND e."partition" = b.part AND e."offset" BETWEEN b.lo AND b.hi'
    " AND e.timestamp_ms BETWEEN %s AND %s LIMIT 1"
)


def _pg_copy_types() -> list[str]:
    """The PostgreSQL type of every column in EVENT_COLUMNS order, for binary COPY."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return [events_table.c[name].type.compile(dialect=dialect).lower() for name in EVENT_COLUMNS]


# SQLite caps the number of bound parameters per statement; executemany binds per row,
# so only the chunk size for memory matters here.
CHUNK_ROWS = 5_000
# Rows per commit when batches queue up faster than they are written (BatchWriter).
GROUP_COMMIT_ROWS = 20_000

# PostgreSQL: every writing transaction first declares the lowest row id it may draw, as a
# shared advisory lock on ID_FLOOR_KEY + the last id drawn so far, held until it ends.
# Why: a reader following events by id (collectors/saga_follower.CommitHorizon) must know
# that no running transaction can still commit an id below the ones it has seen; without
# the declaration it waits for every running writer, with it only for those that began
# before the ids it wants to read. One statement per transaction, not per row.
ID_FLOOR_KEY = 1 << 62
_DECLARE_ID_FLOOR_SQL = (
    "SELECT pg_advisory_xact_lock_shared(%s + last_value - CASE WHEN is_called THEN 0 ELSE 1 END)"
    " FROM events_id_seq"
)


def _insert(engine: Engine, table: Any) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class BatchWriter:
    """Adds batches to one open transaction and commits them together: group commit.

    Why: a commit writes every page the transaction touched to the WAL (SQLite) or makes the
    server flush its WAL (PostgreSQL). Indexes on random keys (trace ids, key hashes, UUID
    event ids) touch about one page per row, so committing ten batches at once writes
    those pages once instead of ten times; at 1M indexed events a SQLite row costs 45 us
    with a commit per 2,500 rows and 26 us with one per 25,000 (docs/benchmarks.md).

    `add` writes the rows, hands them to the hooks' `collect` and moves the positions inside
    the open transaction; `commit` has the hooks flush their work and makes all of it
    durable together. If anything fails the whole open transaction is rolled back and the
    error raised: the batches added since the last commit are gone, and the caller must read
    them again from the stored positions (collectors/kafka/tap.py does).
    """

    def __init__(
        self,
        engine: Engine,
        cluster: str,
        hooks: Sequence[BatchHook] = (),
        commit_rows: int | None = GROUP_COMMIT_ROWS,
    ) -> None:
        self.engine = engine
        # Whether to call `prepare` when idle. On SQLite the open transaction holds the
        # database's one write lock from its first insert, so flushing early holds nothing
        # longer. On PostgreSQL a flush may take locks of its own until the commit (the saga
        # hook does, collectors/sagas.lock_sagas, though no tap runs it any more): flushing
        # early would hold them for the whole transaction, and writers would take turns.
        self.flushes_ahead = is_sqlite(engine)
        self.declares_id_floor = not is_sqlite(engine)  # ID_FLOOR_KEY
        self.commit_rows = commit_rows
        self.cluster = cluster
        self.hooks = list(hooks)
        self.pending_rows = 0  # added since the last commit
        self._inserted = 0  # of those, new to the index
        self._connection: Connection | None = None
        self._events_sql = _insert_events_sql()
        self.copies = engine.dialect.name == "postgresql"  # _PG_COPY_SQL
        self._copy_types = _pg_copy_types() if self.copies else []
        self._positions: dict[PositionKey, int] = {}  # written at the commit
        self._positions_at_ms = 0
        position_insert = _insert(engine, positions_table)
        greatest = func.greatest if engine.dialect.name == "postgresql" else func.max
        self._position_upsert = position_insert.on_conflict_do_update(
            index_elements=["cluster", "topic", "partition"],
            set_={
                "next_offset": greatest(
                    positions_table.c.next_offset, position_insert.excluded.next_offset
                ),
                "updated_at_ms": position_insert.excluded.updated_at_ms,
            },
        )

    def add(
        self,
        rows: Sequence[EventTuple] | Sequence[Mapping[str, Any]],
        next_offsets: Mapping[PositionKey, int],
        now_ms: int,
    ) -> int:
        """Write `rows` and the positions after them into the open transaction.

        Rows are tuples in EVENT_COLUMNS order with their hashes (the tap's hot path,
        collectors/kafka/tap.to_row) or mappings by column name (tests and tools; the
        hashes are computed, collectors/index/event_row.event_row).
        Once the transaction holds `commit_rows` rows it is committed: the return value is
        the number of new rows that commit made durable (0 when it stays open).
        """
        tuples: list[EventTuple] = [
            row if isinstance(row, tuple) else event_row(**row) for row in rows
        ]
        connection = self._connection
        try:
            if connection is None:
                connection = self._connection = self.engine.connect()
                connection.begin()
                if self.declares_id_floor:
                    connection.exec_driver_sql(_DECLARE_ID_FLOOR_SQL, (ID_FLOOR_KEY,))
            if self.copies:
                self._inserted += self._copy(connection, tuples)
            else:
                for start in range(0, len(tuples), CHUNK_ROWS):
                    chunk = tuples[start : start + CHUNK_ROWS]
                    result = connection.exec_driver_sql(self._events_sql, chunk)
                    self._inserted += max(result.rowcount, 0)
            for hook in self.hooks:
                hook.collect(self.cluster, tuples)
        except BaseException:
            self.rollback()
            raise
        positions = self._positions
        for key, offset in next_offsets.items():
            if offset > positions.get(key, -1):
                positions[key] = offset
        self._positions_at_ms = now_ms
        self.pending_rows += len(tuples)
        if self.commit_rows is not None and self.pending_rows >= self.commit_rows:
            return self.commit()
        return 0

    def prepare(self) -> None:
        """Have the hooks write what they collected so far into the open transaction.

        Why: `commit` runs the hooks' work for the whole transaction at once, and meanwhile
        the batches read from Kafka pile up. A writer with nothing to do calls this to do
        that work ahead (when `flushes_ahead`); the commit then only flushes what came
        after. A failure rolls the transaction back and raises, as `add` does.
        """
        connection = self._connection
        if connection is None:
            return
        try:
            for hook in self.hooks:
                hook.flush(connection, self.cluster)
        except BaseException:
            self.rollback()
            raise

    def commit(self) -> int:
        """Commit what was added since the last commit; return how many rows were new."""
        connection, inserted = self._connection, self._inserted
        if connection is None:
            return 0
        self.prepare()  # what the hooks collected since they last flushed
        try:
            self._write_positions(connection)
            connection.commit()
        except BaseException:
            self.rollback()
            raise
        self._reset()
        connection.close()
        return inserted

    def rollback(self) -> None:
        """Drop what was added since the last commit."""
        connection = self._connection
        self._reset()
        for hook in self.hooks:
            hook.discard()
        if connection is not None:
            try:
                connection.rollback()
            finally:
                connection.close()

    def close(self) -> None:
        """Drop what was not committed (the tap commits before it closes)."""
        self.rollback()

    def _copy(self, connection: Connection, rows: Sequence[EventTuple]) -> int:
        """Binary COPY of `rows` into `events`, straight or through the stage (see
        _PG_COPY_SQL); return the rows new to the index."""
        driver = connection.connection.driver_connection
        assert driver is not None
        dbapi = connection.dialect.loaded_dbapi
        statement = _PG_ANY_INDEXED_SQL
        try:
            with driver.cursor() as cursor:
                if self._all_new(cursor, rows):
                    statement = _PG_COPY_SQL
                    self._write_copy(cursor, statement, rows)
                    return len(rows)
                statement = _PG_STAGE_SQL
                cursor.execute(statement)
                statement = _PG_COPY_STAGE_SQL
                self._write_copy(cursor, statement, rows)
                statement = _PG_MOVE_SQL
                cursor.execute(statement)
                inserted: int = max(cursor.rowcount, 0)
                statement = _PG_EMPTY_STAGE_SQL
                cursor.execute(statement)
                return inserted
        except dbapi.Error as error:  # as SQLAlchemy raises it for its own statements
            raise DBAPIError.instance(
                statement, None, error, dbapi.Error, dialect=connection.dialect
            ) from error

    def _write_copy(self, cursor: Any, statement: str, rows: Sequence[EventTuple]) -> None:
        with cursor.copy(statement) as copy:
            copy.set_types(self._copy_types)
            for row in rows:
                copy.write_row(row)

    def _all_new(self, cursor: Any, rows: Sequence[EventTuple]) -> bool:
        """Whether no row of `rows` is in the index (nor twice in `rows`): then they go
        straight into `events`, without the stage and its conflict rule.

        Another collector may still write some of them meanwhile (two owning a partition
        for a moment during a rebalance): the COPY then fails on the unique index, the
        transaction is rolled back, and the tap reads the records again from the stored
        positions, as after any failed write; the check finds them then.
        """
        ranges: dict[tuple[str, str, int], list[int]] = {}
        coordinates: set[tuple[tuple[str, str, int], int]] = set()
        first_ms = last_ms = rows[0][_TIME] if rows else 0
        for row in rows:
            key = (row[_CLUSTER], row[_TOPIC], row[_PARTITION])
            offset, timestamp_ms = row[_OFFSET], row[_TIME]
            coordinates.add((key, offset))
            span = ranges.setdefault(key, [offset, offset])
            span[0], span[1] = min(span[0], offset), max(span[1], offset)
            first_ms, last_ms = min(first_ms, timestamp_ms), max(last_ms, timestamp_ms)
        if len(coordinates) < len(rows):
            return False  # a record twice in the batch
        keys = list(ranges)
        cursor.execute(
            _PG_ANY_INDEXED_SQL,
            ([key[0] for key in keys], [key[1] for key in keys], [key[2] for key in keys],
             [ranges[key][0] for key in keys], [ranges[key][1] for key in keys],
             first_ms, last_ms),
        )  # fmt: skip
        return cursor.fetchone() is None

    def _write_positions(self, connection: Connection) -> None:
        """The positions after everything added, in one statement before the commit."""
        if not self._positions:
            return
        connection.execute(
            self._position_upsert,
            [
                {
                    "cluster": self.cluster,
                    "topic": topic,
                    "partition": partition,
                    "next_offset": offset,
                    "updated_at_ms": self._positions_at_ms,
                }
                for (topic, partition), offset in self._positions.items()
            ],
        )

    def _reset(self) -> None:
        self._connection = None
        self.pending_rows = self._inserted = 0
        self._positions = {}


def write_batch(
    engine: Engine,
    cluster: str,
    rows: Sequence[EventTuple] | Sequence[Mapping[str, Any]],
    next_offsets: Mapping[PositionKey, int],
    now_ms: int,
    hooks: Sequence[BatchHook] = (),
) -> int:
    """Insert `rows`, run the hooks and advance positions atomically; return new rows."""
    writer = BatchWriter(engine, cluster, hooks, commit_rows=None)
    writer.add(rows, next_offsets, now_ms)
    return writer.commit()


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
