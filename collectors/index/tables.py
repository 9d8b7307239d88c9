"""Registry of every module that declares index tables.

Each area keeps its tables in its own module (`models.py` for events and positions,
`<area>_models.py` for the others); importing them all fills SQLModel.metadata, which
the migrations environment and the schema test compare against.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import collectors.index as index_package
from collectors.index.partitions import is_partition_name


def load_all() -> MetaData:
    for module in pkgutil.iter_modules(index_package.__path__):
        if module.name == "models" or module.name.endswith("_models"):
            importlib.import_module(f"collectors.index.{module.name}")
    return SQLModel.metadata


def exists_on(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """An Alembic `include_object` hook: leave out what the models declare for another
    backend only (an index whose `info["dialect"]` names another one), and the partitions
    of PostgreSQL's `events` with their indexes (the models declare the table they make
    up, collectors/index/partitions.py)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if reflected:
            table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
            return not is_partition_name(table or "")
        wanted = obj.info.get("dialect") if hasattr(obj, "info") else None
        return wanted is None or wanted == dialect

    return include
