"""Alerting state kept in the index (written by console/alerts).

- `alert_rules`: rules created or edited in the console (rules from the configuration file
  are not copied here; they are read from the settings at every evaluation).
- `alerts`: one row per alert instance: pending, firing, resolved. A rule and a label set
  give a fingerprint; while an instance is active its row is updated in place, and a
  resolved row stays as history.
- `alert_groups`: Alertmanager's aggregation groups, one per (receiver, group key), with
  what the last notification reported (console/alerts/grouping.py).
- `alert_silences`: label matchers that mute alerts until they expire.
- `alert_receivers`: webhook endpoints; the signing secret is stored to sign deliveries
  and is never shown again after creation.
- `alert_outbox`: notifications waiting for, or done with, delivery (durable: a receiver
  that is down loses nothing); `alert_deliveries`: one row per HTTP attempt.

Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, Text
from sqlmodel import Field, SQLModel

from collectors.index.models import ROW_ID


class AlertRule(SQLModel, table=True):
    __tablename__ = "alert_rules"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    name: str = Field(sa_column=Column(Text, nullable=False))
    definition: str = Field(sa_column=Column(Text, nullable=False))  # JSON, as in the TOML
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_by: str | None = Field(default=None, sa_column=Column(Text))

    __table_args__ = (Index("ux_alert_rules_name", "name", unique=True),)


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    fingerprint: str = Field(sa_column=Column(Text, nullable=False))
    rule_name: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))  # pending, firing, resolved
    severity: str = Field(sa_column=Column(Text, nullable=False))
    labels: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    annotations: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    receivers: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of names
    value: float | None = Field(default=None, sa_column=Column(Float))
    generator_url: str = Field(sa_column=Column(Text, nullable=False))
    active_since_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    starts_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    ends_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    evaluated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The first notification that reported it firing, and the latest that mentioned it.
    notified_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_notified_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    # Firing, its condition gone since then, kept firing by the rule's keep_firing_for.
    cleared_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    notification_note: str | None = Field(default=None, sa_column=Column(Text))  # why none

    __table_args__ = (
        Index("ix_alerts_state", "state"),
        Index("ix_alerts_fingerprint", "fingerprint"),
        Index("ix_alerts_ends_at", "ends_at_ms"),
    )


class AlertGroup(SQLModel, table=True):
    __tablename__ = "alert_groups"

    receiver: str = Field(sa_column=Column(Text, primary_key=True))
    group_key: str = Field(sa_column=Column(Text, primary_key=True))
    labels: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_notified_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_notified_hash: str | None = Field(default=None, sa_column=Column(Text))
    notified_firing: str = Field(sa_column=Column(Text, nullable=False))  # JSON fingerprints
    notified_resolved: str = Field(sa_column=Column(Text, nullable=False))  # JSON fingerprints


class AlertSilence(SQLModel, table=True):
    __tablename__ = "alert_silences"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    matchers: str = Field(sa_column=Column(Text, nullable=False))  # JSON object: label -> value
    comment: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    starts_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    ends_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))

    __table_args__ = (Index("ix_alert_silences_ends_at", "ends_at_ms"),)


class AlertReceiver(SQLModel, table=True):
    __tablename__ = "alert_receivers"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    name: str = Field(sa_column=Column(Text, nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    secret: str | None = Field(default=None, sa_column=Column(Text))  # whsec_..., never shown
    headers: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    timeout_s: float = Field(sa_column=Column(Float, nullable=False))
    max_alerts: int = Field(sa_column=Column(Integer, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))  # config or console
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))

    __table_args__ = (Index("ux_alert_receivers_name", "name", unique=True),)


class AlertOutbox(SQLModel, table=True):
    __tablename__ = "alert_outbox"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    receiver: str = Field(sa_column=Column(Text, nullable=False))
    group_key: str = Field(sa_column=Column(Text, nullable=False))
    webhook_id: str = Field(sa_column=Column(Text, nullable=False))  # same on every retry
    status: str = Field(sa_column=Column(Text, nullable=False))  # firing or resolved
    body: str = Field(sa_column=Column(Text, nullable=False))  # the exact JSON sent
    state: str = Field(sa_column=Column(Text, nullable=False))  # pending, delivered, failed
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    next_attempt_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_error: str | None = Field(default=None, sa_column=Column(Text))

    __table_args__ = (
        Index("ux_alert_outbox_webhook_id", "webhook_id", unique=True),
        Index("ix_alert_outbox_due", "state", "next_attempt_at_ms"),
        Index("ix_alert_outbox_receiver", "receiver", "created_at_ms"),
    )


class AlertDelivery(SQLModel, table=True):
    __tablename__ = "alert_deliveries"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    outbox_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # None: a test
    receiver: str = Field(sa_column=Column(Text, nullable=False))
    webhook_id: str = Field(sa_column=Column(Text, nullable=False))
    attempt: int = Field(sa_column=Column(Integer, nullable=False))
    attempted_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    status_code: int | None = Field(default=None, sa_column=Column(Integer))
    latency_ms: float = Field(sa_column=Column(Float, nullable=False))
    outcome: str = Field(sa_column=Column(Text, nullable=False))  # delivered, retry, failed, gone
    error: str | None = Field(default=None, sa_column=Column(Text))

    __table_args__ = (
        Index("ix_alert_deliveries_receiver", "receiver", "attempted_at_ms"),
        Index("ix_alert_deliveries_outbox", "outbox_id"),
    )


alert_rules_table = AlertRule.__table__  # type: ignore[attr-defined]
alerts_table = Alert.__table__  # type: ignore[attr-defined]
alert_groups_table = AlertGroup.__table__  # type: ignore[attr-defined]
alert_silences_table = AlertSilence.__table__  # type: ignore[attr-defined]
alert_receivers_table = AlertReceiver.__table__  # type: ignore[attr-defined]
alert_outbox_table = AlertOutbox.__table__  # type: ignore[attr-defined]
alert_deliveries_table = AlertDelivery.__table__  # type: ignore[attr-defined]
