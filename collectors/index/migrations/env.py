"""Alembic environment: the engine comes from the caller (collectors.index.migrate)."""

from alembic import context

from collectors.index.migrate import MIGRATION_LOCK_KEY
from collectors.index.tables import exists_on, load_all

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Several processes starting at once on a fresh index (collectors, consoles) take
        # turns: the next one finds the schema at head and has nothing left to do.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
    context.configure(
        connection=connection,
        target_metadata=load_all(),
        include_object=exists_on(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
