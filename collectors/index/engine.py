"""Engine and sessions for the index, on SQLite (the embedded default) or PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    any_,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

SQLITE_CACHE_KIB = 16_384
SQLITE_PAGE_BYTES = 16_384


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def one_of(column: ColumnElement[Any], values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """`column IN (values)`, written `column = ANY(<one array>)` on PostgreSQL.

    Why: psycopg prepares a statement once it has run it five times, and PostgreSQL may
    then plan it once for all parameters. For `IN ($2, ..., $501)` on a table it has no
    statistics for yet, that generic plan can read every row of the table per call (loading
    500 saga states took 680 ms at 60,000 sagas, and ingest slowed as sagas accrued);
    with one array parameter the generic plan is the index look-up (0.6 ms).
    """
    if dialect == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)
    return column.in_(values)


def bind_common_types_directly() -> None:
    """Register identity adapters for None, bytes and bool in Python's sqlite3 module.

    Why: sqlite3 binds int, float and str directly, but sends every other parameter
    through its adaptation protocol, where a type without a registered adapter costs two
    failing attribute look-ups (exceptions raised and cleared). An index row binds a
    dozen NULLs, two blobs and three flags: with these adapters found in the registry its
    insert is ~3 us cheaper (docs/benchmarks.md). What is stored is unchanged: NULL, the
    same blob, and the 1 or 0 SQLite stores for a bool anyway. Process-wide and idempotent.
    """
    none_to_null = cast(Callable[[None], None], {}.get)  # a C callable: {}.get(None) is None
    sqlite3.register_adapter(type(None), none_to_null)
    sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for exact bytes: no copy
    sqlite3.register_adapter(bool, int)


# SQLite calls the deadline check every this many virtual-machine steps: often enough to
# stop within tens of milliseconds, rarely enough that taking the GIL back for it (up to
# 5 ms when other threads run Python) costs little on a scan of a million rows.
SQLITE_CHECK_EVERY_STEPS = 1_000_000
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement stopped by its timeout


class StatementTimeout(Exception):
    """A statement ran past its deadline and the database stopped it."""


@contextmanager
def statement_deadline(connection: Connection, seconds: float | None) -> Iterator[None]:
    """Stop what `connection` runs once `seconds` have passed: StatementTimeout.

    PostgreSQL: `statement_timeout` for the open transaction (each statement gets the
    time; the pool's rollback ends it). SQLite: a progress handler that interrupts the
    running statement once the deadline has passed, removed afterwards (the connection
    goes back to the pool). None: no deadline.
    """
    if seconds is None:
        yield
        return
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(max(1, int(seconds * 1000)))},
        )
        try:
            yield
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
                raise StatementTimeout(f"stopped after {seconds:g} s") from None
            raise
        return
    raw = cast(sqlite3.Connection, connection.connection.driver_connection)
    deadline = time.monotonic() + seconds
    fired = False

    def past_deadline() -> bool:
        nonlocal fired
        fired = time.monotonic() > deadline
        return fired

    raw.set_progress_handler(past_deadline, SQLITE_CHECK_EVERY_STEPS)
    try:
        yield
    except OperationalError:
        if fired:
            raise StatementTimeout(f"stopped after {seconds:g} s") from None
        raise
    finally:
        raw.set_progress_handler(None, 0)


def index_problem(engine: Engine) -> str | None:
    """Why the index does not answer a trivial query, or None when it does (a probe:
    it reports, never raises)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite index URL (relative to the current folder, as SQLite reads it);
    None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def create_index_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout and its folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        bind_common_types_directly()
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the console read while the collector writes. synchronous=NORMAL may lose the
    # last transactions on power loss but never tears one: rows and positions commit
    # together, so a lost transaction is simply consumed again.
    cursor = dbapi_connection.cursor()
    # Takes effect only when the file is created. A random-key index insert (trace ids,
    # UUIDs) dirties about one page per row and the commit writes whole pages: 16 KiB pages
    # make 1M-row ingest ~13% cheaper than the 4 KiB default (docs/benchmarks.md).
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Each pooled connection has a page cache of its own (six services may hold one each),
    # and the OS caches the file anyway: 16 MiB apiece keeps the collector's memory flat.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
