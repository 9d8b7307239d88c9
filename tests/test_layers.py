"""collectors/ writes the index, console/ reads it and acts: the lower layer never imports
the upper one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS_CONSOLE = re.compile(r"^\s*(from console[ .]|import console\b)", re.MULTILINE)


def test_collectors_never_import_console() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "collectors").rglob("*.py"))
        if IMPORTS_CONSOLE.search(path.read_text())
    ]
    assert offenders == []
