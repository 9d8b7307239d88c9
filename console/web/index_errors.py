"""An index that cannot be reached (PostgreSQL down, SQLite's disk full or file locked) is
a 503 with the reason in words, on pages and in the API alike, never a 500 with a
traceback: the collectors keep retrying, and the page works again once the index answers."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# PoolTimeout: every pooled connection stayed busy for the pool's whole wait (30 s).
INDEX_ERRORS = (OperationalError, InterfaceError, PoolTimeout)
RETRY_AFTER_S = 5
MAX_REASON_CHARS = 300


def index_unreachable(exc: BaseException) -> str:
    """The sentence a 503 shows: the driver's first line, capped (never the SQL)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    if len(first) > MAX_REASON_CHARS:
        first = first[: MAX_REASON_CHARS - 1] + "…"
    return (
        f"The index cannot be reached right now ({first}). eventscope keeps retrying; "
        "this page works again as soon as the index answers."
    )
