"""The folder where eventscope keeps what it downloads once per user: Apache Kafka's jars
and the browser libraries of the console. `EVENTSCOPE_CACHE_DIR` moves it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("EVENTSCOPE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "eventscope"
    )
    return Path(base).absolute()
