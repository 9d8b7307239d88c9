import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, select, text

from collectors.index import migrate
from collectors.index.engine import create_index_engine
from collectors.index.identity import identity_equals
from collectors.index.models import (
    IDENTITY_HASH_COLUMNS,
    SEGMENT_ROWS,
    events_table,
    positions_table,
)
from collectors.index.saga_models import saga_cursor_table
from collectors.index.tables import exists_on, load_all
from collectors.schemas.redecode import pending_count
from console.stores.events import EventFilter, search_events
from tests.conftest import ROOT, _drop_postgres_database, fresh_postgres_database


@contextmanager
def index_at_revision(
    backend: str, revision: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    """A fresh index on `backend` migrated up to `revision` only, as an older release left it."""
    server_url, name = "", None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        server_url = request.getfixturevalue("postgres_url")
        url, name = fresh_postgres_database(server_url)
    engine = create_index_engine(url)
    try:
        migrate.upgrade(engine, revision)
        yield engine
    finally:
        engine.dispose()
        if name is not None:
            _drop_postgres_database(server_url, name)


# Alembic cannot compare indexes on expressions (the segmented hash indexes): see below.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_migrations_build_exactly_the_declared_tables(index_db) -> None:
    """The models and the migrations agree, so a fresh index and an upgraded one are alike."""
    with index_db.engine.connect() as connection:
        dialect = connection.dialect.name
        context = MigrationContext.configure(
            connection, opts={"include_object": exists_on(dialect)}
        )
        differences = compare_metadata(context, load_all())
    assert differences == []
    assert migrate.current_revision(index_db.engine) == migrate.head_revision()


def test_restart_keeps_the_index(index_db) -> None:
    with index_db.engine.begin() as connection:
        connection.execute(
            insert(positions_table).values(
                cluster="c", topic="t", partition=0, next_offset=42, updated_at_ms=1
            )
        )
    index_db.engine.dispose()
    engine = create_index_engine(index_db.url)
    migrate.upgrade(engine)  # what every start does
    with engine.connect() as connection:
        rows = connection.execute(select(positions_table.c.next_offset)).all()
    engine.dispose()
    assert rows == [(42,)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_an_index_hashes_the_identities_of_its_events(backend, tmp_path, request) -> None:
    """0009: events indexed before identity hashes existed are found by identity after it."""
    with index_at_revision(backend, "0008", tmp_path, request) as engine:
        with engine.begin() as connection:
            for offset in range(3):
                connection.execute(
                    text(
                        'INSERT INTO events (cluster, topic, partition, "offset", timestamp_ms, '
                        "indexed_at_ms, value_size, value_truncated, is_tombstone, content_type, "
                        "headers, event_id, correlation_id, trace_id, saga_id, is_dlq) VALUES "
                        "('c', 'old', 0, :offset, :offset, 0, -1, false, true, 'binary', '[]', "
                        ":event_id, 'order-7', :trace, :saga, false)"
                    ),
                    {
                        "offset": offset,
                        "event_id": f"evt-{offset}",
                        "trace": "ab" * 16,
                        "saga": "order-7" if offset < 2 else "trip-1",
                    },
                )
        migrate.upgrade(engine)
        result = search_events(engine, EventFilter(correlation_id="order-7"))
        assert sorted(event["offset"] for event in result.events) == [0, 1, 2]
        assert [
            e["offset"] for e in search_events(engine, EventFilter(event_id="evt-1")).events
        ] == [1]
        assert len(search_events(engine, EventFilter(trace_id="ab" * 16)).events) == 3
        with engine.connect() as connection:
            by_saga = connection.execute(
                select(events_table.c.offset).where(identity_equals("saga_id", "trip-1"))
            ).all()
            assert by_saga == [(2,)]
            assert connection.execute(
                select(events_table.c.offset).where(identity_equals("saga_id", "order-7"))
            ).all() == [(0,), (1,)]


@pytest.mark.parametrize("index_db", ["sqlite"], indirect=True)
def test_hash_indexes_lead_with_the_segment_of_the_row(index_db) -> None:
    """0010: SQLite's key and identity hash indexes are (id / SEGMENT_ROWS, hash), which the
    metadata comparison above cannot check (it skips indexes on expressions). PostgreSQL's
    are plain, one per day partition (0014), and compared above."""
    query = "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
    with index_db.engine.connect() as connection:
        definitions = dict(connection.exec_driver_sql(query).all())
    for column in ("key_hash", *IDENTITY_HASH_COLUMNS.values()):
        definition = definitions[f"ix_events_{column}"].replace("(", "").replace(")", "")
        expected = f"ON events id / {SEGMENT_ROWS}, {column} WHERE {column} IS NOT NULL"
        assert definition.endswith(expected), definition


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_marks_framed_records_for_decoding(backend, tmp_path, request) -> None:
    """0011: records indexed with a registry frame before decoding existed wait for the
    re-decode pass; the others are left alone."""
    with index_at_revision(backend, "0010", tmp_path, request) as engine:
        with engine.begin() as connection:
            for offset, schema_id in ((0, 7), (1, None)):
                connection.execute(
                    text(
                        'INSERT INTO events (cluster, topic, partition, "offset", timestamp_ms, '
                        "indexed_at_ms, value_size, value_truncated, is_tombstone, content_type, "
                        "headers, schema_id, is_dlq) VALUES ('c', 'old', 0, :offset, 0, 0, 9, "
                        "false, false, :content_type, '[]', :schema_id, false)"
                    ),
                    {
                        "offset": offset,
                        "schema_id": schema_id,
                        "content_type": "binary" if schema_id else "json",
                    },
                )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            states = connection.execute(
                select(events_table.c.offset, events_table.c.decode_state).order_by(
                    events_table.c.offset
                )
            ).all()
        assert states == [(0, "pending"), (1, None)]
        assert pending_count(engine, "c") == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_starts_the_saga_follower_after_the_events_already_derived(
    backend, tmp_path, request
) -> None:
    """0013: an index whose sagas were derived as its events were written starts the
    follower's cursor at its newest event; a fresh one at 0."""
    with index_at_revision(backend, "0012", tmp_path, request) as engine:
        with engine.begin() as connection:
            for offset in range(3):
                connection.execute(
                    text(
                        'INSERT INTO events (cluster, topic, partition, "offset", timestamp_ms, '
                        "indexed_at_ms, value_size, value_truncated, is_tombstone, content_type, "
                        "headers, saga_id, is_dlq) VALUES ('c', 'old', 0, :offset, 0, 0, -1, "
                        "false, true, 'binary', '[]', 'trip-1', false)"
                    ),
                    {"offset": offset},
                )
            newest = connection.execute(
                select(events_table.c.id).order_by(events_table.c.id.desc())
            ).scalar()
        migrate.upgrade(engine)
        with engine.connect() as connection:
            cursor = connection.execute(
                select(saga_cursor_table.c.name, saga_cursor_table.c.last_id)
            ).all()
        assert cursor == [("sagas", newest)]


def test_a_fresh_index_follows_sagas_from_its_first_event(index_db) -> None:
    with index_db.engine.connect() as connection:
        assert connection.execute(select(saga_cursor_table.c.last_id)).all() == [(0,)]


def test_processes_starting_at_once_on_a_fresh_postgresql_index_take_turns(postgres_url) -> None:
    """Two collectors started together on a new index both migrate it: without the lock one
    of them failed (`duplicate key value violates unique constraint "pg_type_typname..."`,
    two CREATE TABLEs of one name) and exited."""
    url, name = fresh_postgres_database(postgres_url)
    script = ("import sys\nfrom collectors.index import migrate\n"
              "from collectors.index.engine import create_index_engine\n"
              "migrate.upgrade(create_index_engine(sys.argv[1]))\n")  # fmt: skip
    engine = create_index_engine(url)
    try:  # processes: Alembic's context is one per process
        starts = [subprocess.Popen([sys.executable, "-c", script, url], cwd=ROOT,
                                   stderr=subprocess.PIPE) for _ in range(4)]  # fmt: skip
        failures = [p.communicate(timeout=120)[1].decode()[-800:] for p in starts]
        assert [p.returncode for p in starts] == [0, 0, 0, 0], failures
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
        _drop_postgres_database(postgres_url, name)
