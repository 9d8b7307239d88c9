from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select

from collectors.index import migrate
from collectors.index.engine import create_index_engine
from collectors.index.models import positions_table
from collectors.index.tables import load_all


def test_migrations_build_exactly_the_declared_tables(index_db) -> None:
    """The models and the migrations agree, so a fresh index and an upgraded one are alike."""
    with index_db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
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
