"""The layers and the rules between them:

- collectors/ writes the index, console/ reads it and acts: collectors never import console.
- The index core (tables, engine, identity look-ups, the writer, migrations) imports no
  area; retention, which maintains every area's tables, is the one service in the folder.
- Views run no SQL: they import neither SQLAlchemy nor the tables, and call stores.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS_CONSOLE = re.compile(r"^\s*(from console[ .]|import console\b)", re.MULTILINE)
IMPORTS_COLLECTORS = re.compile(r"^\s*from (collectors(?:\.\w+)+) import", re.MULTILINE)
IMPORTS_SQL = re.compile(
    r"^\s*(from sqlalchemy|import sqlalchemy|from collectors\.index\.\w*models)", re.MULTILINE
)
RUNS_SQL = re.compile(r"\.(execute|exec_driver_sql|connect|begin)\(")


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_collectors_never_import_console() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources("collectors")
        if IMPORTS_CONSOLE.search(path.read_text())
    ]
    assert offenders == []


def test_the_index_core_imports_no_area() -> None:
    offenders = []
    for path in _sources("collectors/index"):
        if path.name == "retention.py":
            continue
        for module in IMPORTS_COLLECTORS.findall(path.read_text()):
            if not module.startswith(("collectors.index", "collectors.config")):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_views_run_no_sql() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources("console/views")
        if IMPORTS_SQL.search(path.read_text()) or RUNS_SQL.search(path.read_text())
    ]
    assert offenders == []
