"""Masking rules kept in the index (managed on /admin/masking), and the policy in force for
one request: the configured rules plus the enabled stored ones, for the caller's role.

The stored rules are read on every request (one small query), so that every console
process sharing the index applies a change at once; compiling them is cached.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from collectors.conventions import Conventions
from collectors.index.masking_models import masking_rules_table as rules_table
from console.masking import MaskingPolicy, MaskRule, RowMasker, make_rule, masker
from console.masking_rules import MaskingSettings
from console.state import AppState, app_state
from console.stores import audit as audit_store

StoredRow = tuple[Any, ...]


def _now_ms() -> int:
    return int(time.time() * 1000)


def list_rules(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(rules_table).order_by(rules_table.c.name))
        return [dict(r._mapping) for r in rows]


def create_rule(connection: Connection, rule: MaskRule, enabled: bool, actor: str) -> int:
    exists = connection.execute(
        select(rules_table.c.id).where(func.lower(rules_table.c.name) == rule.name.lower())
    ).first()
    if exists:
        raise ValueError(f"a masking rule named {rule.name!r} exists")
    now = _now_ms()
    result = connection.execute(
        insert(rules_table).values(
            name=rule.name, kind=rule.kind, pattern=rule.pattern, topics=rule.topics,
            replacement=rule.replacement, enabled=enabled, created_by=actor,
            created_at_ms=now, updated_at_ms=now,
        )
    )  # fmt: skip
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_rule(connection: Connection, rule_id: int) -> dict[str, Any] | None:
    row = connection.execute(select(rules_table).where(rules_table.c.id == rule_id)).first()
    return dict(row._mapping) if row else None


def set_enabled(connection: Connection, rule_id: int, enabled: bool) -> bool:
    result = connection.execute(
        update(rules_table)
        .where(rules_table.c.id == rule_id)
        .values(enabled=enabled, updated_at_ms=_now_ms())
    )
    return bool(result.rowcount)


def delete_rule(connection: Connection, rule_id: int) -> bool:
    result = connection.execute(delete(rules_table).where(rules_table.c.id == rule_id))
    return bool(result.rowcount)


def _stored_rows(engine: Engine) -> tuple[StoredRow, ...]:
    c = rules_table.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(c.id, c.name, c.kind, c.pattern, c.topics, c.replacement)
            .where(c.enabled.is_(True))
            .order_by(c.id)
        )
        return tuple(tuple(row) for row in rows)


@functools.lru_cache(maxsize=64)
def _compiled(rows: tuple[StoredRow, ...]) -> tuple[MaskRule, ...]:
    rules = []
    for _id, name, kind, pattern, topics, replacement in rows:
        try:
            rules.append(make_rule(name, kind, pattern, topics, replacement))
        except ValueError:
            # Checked when stored; a rule a newer version refuses must not go unapplied
            # silently, so it hides every value of its topics instead.
            rules.append(make_rule(name, "regex", r"(?s).+", topics, replacement))
    return tuple(rules)


def current_policy(
    engine: Engine, configured: MaskingSettings, conventions: Conventions
) -> MaskingPolicy:
    """The file's rules and the stored ones; a derived column (the DLQ error fields) is
    masked by the rules of the headers it is read from."""
    derived = {
        "dlq_error_class": tuple(conventions.dlq_error_class_headers),
        "dlq_error_message": tuple(conventions.dlq_error_message_headers),
        "dlq_stacktrace": tuple(conventions.dlq_stacktrace_headers),
    }
    stored = _compiled(_stored_rows(engine))
    return MaskingPolicy(
        rules=configured.rules + stored, apply_to=configured.apply_to, derived_from=derived
    )


def caller_role(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.role if principal is not None else None


def policy_in_force(state: AppState) -> MaskingPolicy:
    """The policy for this moment (one small query). A view that already runs index work on
    a thread reads it there too, so that its request makes one trip through a thread."""
    return current_policy(state.engine, state.areas.masking, state.areas.conventions)


def masker_of(policy: MaskingPolicy, request: Request) -> RowMasker:
    """A function that masks an index row as this request's caller may see it."""
    return masker(policy, caller_role(request))


async def masker_for(request: Request) -> RowMasker:
    """What a view calls: a function that masks an index row as this caller may see it."""
    policy = await run_in_threadpool(policy_in_force, app_state(request))
    return masker_of(policy, request)


# --- changes from the console, each with its audit row -------------------------------------------


def create_rule_audited(
    engine: Engine, rule: MaskRule, enabled: bool, actor: str, remote: str | None
) -> int:
    """Store a rule and its audit row; ValueError when the name is taken."""
    with engine.begin() as connection:
        rule_id = create_rule(connection, rule, enabled, actor)
        audit_store.record(
            connection, actor, "masking.rule.create", rule.name,
            {**rule.as_json(), "id": rule_id, "enabled": enabled}, remote,
        )  # fmt: skip
    return rule_id


def set_enabled_audited(
    engine: Engine, rule_id: int, enabled: bool, actor: str, remote: str | None
) -> bool:
    """False when there is no such rule."""
    with engine.begin() as connection:
        row = get_rule(connection, rule_id)
        if row is None:
            return False
        set_enabled(connection, rule_id, enabled)
        action = "masking.rule.enable" if enabled else "masking.rule.disable"
        audit_store.record(connection, actor, action, row["name"], {"id": rule_id}, remote)
    return True


def delete_rule_audited(engine: Engine, rule_id: int, actor: str, remote: str | None) -> bool:
    """False when there is no such rule."""
    with engine.begin() as connection:
        row = get_rule(connection, rule_id)
        if row is None:
            return False
        delete_rule(connection, rule_id)
        audit_store.record(
            connection, actor, "masking.rule.delete", row["name"],
            {"id": rule_id, "kind": row["kind"], "pattern": row["pattern"]}, remote,
        )  # fmt: skip
    return True
