"""Append one row to the audit log: who did what to which thing, from where.

Actions are named "<kind>.<what>": auth.login, auth.login_failed, auth.logout,
user.create, user.role, user.disable, user.enable, user.password, token.create,
token.revoke, action.replay, action.redrive, action.cancel, alerts.rule.save, ...,
alerts.silence.create, alerts.silence.expire, masking.rule.create, ... (the audit page
filters by kind). Rows are never updated or deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
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


def user_change_entries(changes: Mapping[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The audit actions of one user update: a role change, disable/enable, a new password
    (whose value is never written)."""
    entries: list[tuple[str, dict[str, Any]]] = []
    if changes.get("role") is not None:
        entries.append(("user.role", {"role": changes["role"]}))
    if changes.get("disabled") is not None:
        entries.append(("user.disable" if changes["disabled"] else "user.enable", {}))
    if changes.get("password") is not None:
        entries.append(("user.password", {}))
    return entries


def cli_actor() -> str:
    """Who ran an `eventscope` command: the operating-system user, marked as the CLI."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
