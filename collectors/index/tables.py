"""Registry of every module that declares index tables.

Each area keeps its tables in its own module (`models.py` for events and positions,
`<area>_models.py` for the others); importing them all fills SQLModel.metadata, which
the migrations environment and the schema test compare against.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import collectors.index as index_package


def load_all() -> MetaData:
    for module in pkgutil.iter_modules(index_package.__path__):
        if module.name == "models" or module.name.endswith("_models"):
            importlib.import_module(f"collectors.index.{module.name}")
    return SQLModel.metadata
