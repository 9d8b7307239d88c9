"""The alerts' store: rules and receivers kept in the index (those edited in the console,
and the configured receivers copied in at start so that deliveries, the log and the 410
switch-off have one place to live), alerts with their silences, and the delivery log.

Rules from the configuration file stay in the settings (they are never copied): a
console rule may not take the name of a configured one. Every change made in the console
is written with its audit row in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from collectors.index.alert_models import (
    alert_deliveries_table,
    alert_receivers_table,
    alert_rules_table,
    alerts_table,
)
from console.alerts.grouping import FIRING
from console.alerts.rules import Rule, RuleError, rule_from_mapping
from console.alerts.settings import AlertSettings, Receiver, receiver_from_mapping
from console.alerts.silences import create_silence, expire_silence, load_silences
from console.stores import audit as audit_store

PENDING = "pending"
ACTIVE_STATES = (PENDING, FIRING)  # an alert's states before it resolves
HISTORY_LIMIT = 200
DELIVERIES_LIMIT = 200


Actor = audit_store.Actor


@dataclass(frozen=True)
class StoredReceiver:
    receiver: Receiver
    source: str  # config or console
    disabled_reason: str | None
    created_at_ms: int

    def as_json(self) -> dict[str, Any]:
        """The receiver as pages and the API show it: never the secret, never header values."""
        r = self.receiver
        return {
            "name": r.name,
            "url": r.url,
            "signed": r.secret is not None,
            "headers": sorted(r.headers),
            "timeoutS": r.timeout_s,
            "maxAlerts": r.max_alerts,
            "enabled": r.enabled,
            "disabledReason": self.disabled_reason,
            "source": self.source,
        }


# --- rules ------------------------------------------------------------------------------------


def console_rules(connection: Connection) -> list[tuple[Rule | None, str, str | None]]:
    """Every stored rule as (rule or None when it no longer parses, name, error)."""
    out: list[tuple[Rule | None, str, str | None]] = []
    for row in connection.execute(select(alert_rules_table).order_by(alert_rules_table.c.name)):
        try:
            data = json.loads(row.definition)
            rule = rule_from_mapping({**data, "enabled": bool(row.enabled)}, source="console")
            out.append((rule, row.name, None))
        except (ValueError, TypeError) as exc:
            out.append((None, row.name, str(exc)[:500]))
    return out


def all_rules(connection: Connection, settings: AlertSettings) -> list[Rule]:
    configured = list(settings.rules)
    names = {rule.name for rule in configured}
    stored = [rule for rule, _, _ in console_rules(connection) if rule and rule.name not in names]
    return configured + stored


def save_rule(
    connection: Connection,
    data: Mapping[str, Any],
    settings: AlertSettings,
    now_ms: int,
    user: str,
    *,
    replaces: str | None = None,
) -> Rule:
    """Check and store a console rule (new, or replacing the one named ``replaces``)."""
    rule = rule_from_mapping(data, source="console")
    if any(r.name == rule.name for r in settings.rules):
        raise RuleError("name", f"{rule.name!r} is defined in the configuration file")
    columns = alert_rules_table.c
    existing = connection.execute(select(columns.name).where(columns.name == rule.name)).first()
    if existing and rule.name != replaces:
        raise RuleError("name", f"a rule named {rule.name!r} exists already")
    definition = json.dumps(rule.to_mapping(), sort_keys=True)
    if replaces is not None:
        result = connection.execute(
            update(alert_rules_table)
            .where(columns.name == replaces)
            .values(
                name=rule.name,
                definition=definition,
                enabled=rule.enabled,
                updated_at_ms=now_ms,
                updated_by=user,
            )
        )
        if result.rowcount:
            return rule
    connection.execute(
        insert(alert_rules_table).values(
            name=rule.name,
            definition=definition,
            enabled=rule.enabled,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            updated_by=user,
        )
    )
    return rule


def delete_rule(connection: Connection, name: str) -> bool:
    result = connection.execute(delete(alert_rules_table).where(alert_rules_table.c.name == name))
    return bool(result.rowcount)


# --- receivers --------------------------------------------------------------------------------


def sync_config_receivers(engine: Engine, receivers: Sequence[Receiver], now_ms: int) -> None:
    """Copy the configured receivers into the index (the file wins over earlier copies).

    A configured receiver that answered 410 stays disabled until its configuration changes.
    """
    columns = alert_receivers_table.c
    with engine.begin() as connection:
        for receiver in receivers:
            values = _receiver_values(receiver) | {"source": "config", "updated_at_ms": now_ms}
            row = connection.execute(
                select(columns.url, columns.disabled_reason).where(columns.name == receiver.name)
            ).first()
            if row is None:
                connection.execute(
                    insert(alert_receivers_table).values(
                        **values, created_at_ms=now_ms, disabled_reason=None
                    )
                )
                continue
            if row.disabled_reason and row.url == receiver.url:
                values["enabled"] = False
            connection.execute(
                update(alert_receivers_table).where(columns.name == receiver.name).values(**values)
            )


def create_receiver(connection: Connection, data: Mapping[str, Any], now_ms: int) -> Receiver:
    receiver = receiver_from_mapping(data)
    columns = alert_receivers_table.c
    if connection.execute(select(columns.id).where(columns.name == receiver.name)).first():
        raise ValueError(f"name: a receiver named {receiver.name!r} exists already")
    connection.execute(
        insert(alert_receivers_table).values(
            **_receiver_values(receiver),
            source="console",
            disabled_reason=None,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
        )
    )
    return receiver


def delete_receiver(connection: Connection, name: str) -> bool:
    columns = alert_receivers_table.c
    result = connection.execute(
        delete(alert_receivers_table).where(columns.name == name, columns.source == "console")
    )
    return bool(result.rowcount)


def set_receiver_enabled(
    connection: Connection, name: str, enabled: bool, reason: str | None, now_ms: int
) -> bool:
    result = connection.execute(
        update(alert_receivers_table)
        .where(alert_receivers_table.c.name == name)
        .values(enabled=enabled, disabled_reason=None if enabled else reason, updated_at_ms=now_ms)
    )
    return bool(result.rowcount)


def load_receivers(connection: Connection) -> dict[str, StoredReceiver]:
    out: dict[str, StoredReceiver] = {}
    rows = connection.execute(select(alert_receivers_table).order_by(alert_receivers_table.c.name))
    for row in rows:
        try:
            headers = json.loads(row.headers)
        except ValueError:
            headers = {}
        receiver = Receiver(
            name=row.name,
            url=row.url,
            secret=row.secret,
            headers=headers if isinstance(headers, dict) else {},
            timeout_s=float(row.timeout_s),
            max_alerts=int(row.max_alerts),
            enabled=bool(row.enabled),
        )
        out[row.name] = StoredReceiver(
            receiver, row.source, row.disabled_reason, int(row.created_at_ms)
        )
    return out


def _receiver_values(receiver: Receiver) -> dict[str, Any]:
    return {
        "name": receiver.name,
        "url": receiver.url,
        "secret": receiver.secret,
        "headers": json.dumps(dict(receiver.headers), sort_keys=True),
        "timeout_s": receiver.timeout_s,
        "max_alerts": receiver.max_alerts,
        "enabled": receiver.enabled,
    }


def receivers_with_config(
    connection: Connection, configured: Sequence[Receiver]
) -> dict[str, StoredReceiver]:
    """The stored receivers, plus configured ones not copied in yet (a console-only process
    runs no evaluator, which is what copies them)."""
    stored = load_receivers(connection)
    for receiver in configured:
        stored.setdefault(receiver.name, StoredReceiver(receiver, "config", None, 0))
    return dict(sorted(stored.items()))


# --- reading for the pages ----------------------------------------------------------------------


def firing_count(engine: Engine) -> int:
    """How many alerts fire now (silenced ones too): the count beside "Alerts" in the nav."""
    query = select(func.count()).select_from(alerts_table).where(alerts_table.c.state == FIRING)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def alerts_and_silences(engine: Engine, now_ms: int) -> tuple[list[Any], list[Any], list[Any]]:
    """(active alert rows, resolved alert rows newest first, silences of the last day)."""
    c = alerts_table.c
    with engine.connect() as connection:
        active = connection.execute(
            select(alerts_table).where(c.state.in_(ACTIVE_STATES)).order_by(c.active_since_ms)
        ).all()
        history = connection.execute(
            select(alerts_table)
            .where(c.state == "resolved")
            .order_by(c.ends_at_ms.desc())
            .limit(HISTORY_LIMIT)
        ).all()
        silences = load_silences(connection, now_ms, expired_within_ms=86_400_000)
    return list(active), list(history), silences


def rules_with_counts(
    engine: Engine,
) -> tuple[list[tuple[Rule | None, str, str | None]], dict[tuple[str, str], int]]:
    """The console's stored rules, and the active alerts per (rule name, state)."""
    with engine.connect() as connection:
        stored = console_rules(connection)
        counts: dict[tuple[str, str], int] = {}
        for name, state in connection.execute(
            select(alerts_table.c.rule_name, alerts_table.c.state).where(
                alerts_table.c.state.in_(ACTIVE_STATES)
            )
        ):
            counts[(name, state)] = counts.get((name, state), 0) + 1
    return stored, counts


def receivers_and_deliveries(
    engine: Engine, configured: Sequence[Receiver], name: str | None = None
) -> tuple[dict[str, StoredReceiver], list[Any]]:
    """Every receiver, and the delivery log newest first (of one receiver, if named)."""
    c = alert_deliveries_table.c
    with engine.connect() as connection:
        receivers = receivers_with_config(connection, configured)
        query = select(alert_deliveries_table).order_by(c.id.desc()).limit(DELIVERIES_LIMIT)
        if name is not None:
            query = query.where(c.receiver == name)
        deliveries = connection.execute(query).all()
    return receivers, list(deliveries)


def find_receiver(
    engine: Engine, configured: Sequence[Receiver], name: str
) -> StoredReceiver | None:
    with engine.connect() as connection:
        return receivers_with_config(connection, configured).get(name)


# --- changes from the console, each with its audit row -------------------------------------------


def add_silence(
    engine: Engine, matchers: Mapping[str, str], seconds: float, comment: str, actor: Actor,
    now_ms: int,
) -> int:  # fmt: skip
    with engine.begin() as connection:
        silence_id = create_silence(connection, matchers, seconds, comment, actor.name, now_ms)
        audit_store.record(
            connection, actor.name, "alerts.silence.create", str(silence_id),
            {"matchers": dict(matchers), "seconds": seconds, "comment": comment}, actor.remote,
        )  # fmt: skip
    return silence_id


def end_silence(engine: Engine, silence_id: int, actor: Actor, now_ms: int) -> bool:
    return audit_store.change_audited(
        engine, actor, "alerts.silence.expire", str(silence_id),
        lambda connection: expire_silence(connection, silence_id, now_ms),
    )  # fmt: skip


def save_rule_audited(
    engine: Engine, data: Mapping[str, Any], settings: AlertSettings, actor: Actor, now_ms: int,
    replaces: str | None,
) -> Rule:  # fmt: skip
    with engine.begin() as connection:
        rule = save_rule(connection, data, settings, now_ms, actor.name, replaces=replaces)
        audit_store.record(
            connection, actor.name, "alerts.rule.save", rule.name,
            {"rule": rule.to_mapping(), "replaces": replaces}, actor.remote,
        )  # fmt: skip
    return rule


def delete_rule_audited(engine: Engine, name: str, actor: Actor) -> bool:
    return audit_store.change_audited(
        engine, actor, "alerts.rule.delete", name, lambda connection: delete_rule(connection, name)
    )


def create_receiver_audited(
    engine: Engine, data: Mapping[str, Any], actor: Actor, now_ms: int
) -> Receiver:
    with engine.begin() as connection:
        receiver = create_receiver(connection, data, now_ms)
        audit_store.record(
            connection, actor.name, "alerts.receiver.create", receiver.name,
            {"url": receiver.url, "signed": receiver.secret is not None,
             "headers": sorted(receiver.headers)},
            actor.remote,
        )  # fmt: skip
    return receiver


def delete_receiver_audited(engine: Engine, name: str, actor: Actor) -> bool:
    return audit_store.change_audited(
        engine, actor, "alerts.receiver.delete", name,
        lambda connection: delete_receiver(connection, name),
    )  # fmt: skip


def enable_receiver_audited(engine: Engine, name: str, actor: Actor, now_ms: int) -> bool:
    return audit_store.change_audited(
        engine, actor, "alerts.receiver.enable", name,
        lambda connection: set_receiver_enabled(connection, name, True, None, now_ms),
    )  # fmt: skip
