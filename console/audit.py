"""Append one row to the audit log: who did what to which thing, from where."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Engine, insert

from collectors.index.audit_models import audit_table

MAX_TEXT = 500


def record(
    connection_or_engine: Connection | Engine,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
    remote: str | None = None,
) -> None:
    """Write the row; given a connection it joins that transaction, else it commits alone."""
    statement = insert(audit_table).values(
        at_ms=int(time.time() * 1000),
        actor=actor[:MAX_TEXT],
        action=action[:MAX_TEXT],
        target=target[:MAX_TEXT] if target is not None else None,
        detail=json.dumps(detail or {}, default=str, ensure_ascii=False),
        remote=remote[:MAX_TEXT] if remote is not None else None,
    )
    if isinstance(connection_or_engine, Connection):
        connection_or_engine.execute(statement)
        return
    with connection_or_engine.begin() as connection:
        connection.execute(statement)
