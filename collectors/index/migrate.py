"""Alembic migrations, run automatically at start so that users keep their index on upgrade."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from collectors.index import partitions

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x65766D6967  # PostgreSQL advisory lock held while migrating ("evmig")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)
    if revision == "head" and engine.dialect.name == "postgresql":
        # Today's partition and the next days' before the first record arrives (retention
        # rounds make them from then on).
        partitions.maintain(engine, cutoff_ms=None)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return max(heads) if heads else None


def head_revision() -> str | None:
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    return max(heads) if heads else None
