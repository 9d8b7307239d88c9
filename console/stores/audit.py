"""The audit log: one row per thing done (who, what, to which thing, from where), and
reading it back with filters, newest first, in cursor pages.

Actions are named "<kind>.<what>": auth.login, auth.login_failed, auth.logout,
user.create, user.role, user.disable, user.enable, user.password, token.create,
token.revoke, action.replay, action.redrive, action.cancel, alerts.rule.save, ...,
alerts.silence.create, alerts.silence.expire, masking.rule.create, ... (the audit page
filters by kind). The log is append-only: nothing here (or anywhere in the console)
updates or deletes a row, and retention only ever deletes events.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select

from collectors.index.audit_models import audit_table
from console.stores.events import SearchError, format_time, parse_time, query_text

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER_CHARS = 200
# The kinds the `action` filter offers; an action is "<kind>.<what>" (e.g. user.role).
ACTION_KINDS = ("auth", "user", "token", "action", "alerts", "masking")


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # a kind ("user") or a full action ("user.role")
    q: str | None = None  # text in the target, details, remote address, actor or action
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def query_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None or name == "cursor" or (name == "limit" and value == DEFAULT_LIMIT):
                continue
            if name.endswith("_ms"):
                args[name.removesuffix("_ms")] = format_time(value)
            else:
                args[name] = str(value)
        return args


def parse_filter(params: Mapping[str, str]) -> AuditFilter:
    """Every bad value raises SearchError naming the parameter."""

    def text(name: str) -> str | None:
        return query_text(params, name, MAX_FILTER_CHARS)

    limit = DEFAULT_LIMIT
    raw_limit = text("limit")
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise SearchError("limit", f"an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
    since, until = text("since"), text("until")
    f = AuditFilter(
        actor=text("actor"),
        action=text("action"),
        q=text("q"),
        since_ms=parse_time("since", since) if since else None,
        until_ms=parse_time("until", until) if until else None,
        limit=limit,
        cursor=text("cursor"),
    )
    if f.cursor is not None:
        decode_cursor(f.cursor)
    if f.since_ms is not None and f.until_ms is not None and f.since_ms > f.until_ms:
        raise SearchError("until", "is before since")
    return f


def encode_cursor(at_ms: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{at_ms}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded).decode()
        at_ms, row_id = text.removeprefix("a").split(":")
        if not text.startswith("a"):
            raise ValueError(cursor)
        return int(at_ms), int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise SearchError("cursor", "not a cursor this server made") from None


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class AuditPage:
    entries: list[dict[str, Any]]
    next_cursor: str | None
    limit: int


def search_audit(engine: Engine, f: AuditFilter) -> AuditPage:
    c = audit_table.c
    conditions = []
    if f.actor:
        conditions.append(func.lower(c.actor) == f.actor.lower())
    if f.action:
        prefix = f.action.lower().rstrip(".")
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"
        conditions.append(or_(c.action == prefix, c.action.like(pattern, escape="\\")))
    if f.q:
        pattern = _like(f.q.lower())
        conditions.append(
            or_(*(func.lower(column).like(pattern, escape="\\")
                  for column in (c.target, c.detail, c.remote, c.actor, c.action)))
        )  # fmt: skip
    if f.since_ms is not None:
        conditions.append(c.at_ms >= f.since_ms)
    if f.until_ms is not None:
        conditions.append(c.at_ms <= f.until_ms)
    if f.cursor:
        at_ms, row_id = decode_cursor(f.cursor)
        conditions.append(or_(c.at_ms < at_ms, and_(c.at_ms == at_ms, c.id < row_id)))
    query = (
        select(audit_table)
        .where(*conditions)
        .order_by(c.at_ms.desc(), c.id.desc())
        .limit(f.limit + 1)
    )
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    next_cursor = encode_cursor(rows[-1]["at_ms"], rows[-1]["id"]) if more and rows else None
    return AuditPage([entry_view(row) for row in rows], next_cursor, f.limit)


def entry_view(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        detail = json.loads(row["detail"] or "{}")
    except ValueError:
        detail = {"unreadable": row["detail"][:200]}
    return {
        "id": row["id"],
        "at": format_time(row["at_ms"]),
        "at_ms": row["at_ms"],
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "detail": detail,
        "remote": row["remote"],
    }


def changes_to(
    engine: Engine, target: str, action_prefix: str, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest audited changes to one target (a group's offset resets, its deletion),
    newest first."""
    c = audit_table.c
    query = (
        select(audit_table)
        .where(c.target == target, c.action.like(action_prefix.rstrip(".") + ".%"))
        .order_by(c.at_ms.desc(), c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [entry_view(dict(r._mapping)) for r in connection.execute(query)]


def known_actors(engine: Engine, limit: int = 200) -> list[str]:
    """Actors for the filter's suggestions, most recent first."""
    c = audit_table.c
    query = select(c.actor).group_by(c.actor).order_by(func.max(c.at_ms).desc()).limit(limit)
    with engine.connect() as connection:
        return [str(actor) for actor in connection.execute(query).scalars()]


# --- writing -----------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class Actor:
    """Who changes something from the console, for the audit row."""

    name: str
    remote: str | None


def change_audited(
    engine: Engine,
    actor: Actor,
    action: str,
    target: str,
    change: Callable[[Connection], bool],
    detail: dict[str, Any] | None = None,
) -> bool:
    """Make a change that may find nothing to change; if it did change something, its audit
    row commits with it. Returns whether it did."""
    with engine.begin() as connection:
        done = change(connection)
        if done:
            record(connection, actor.name, action, target, detail, actor.remote)
    return done
