"""Saga instances, materialized from the indexed events (collectors/sagas.py), and how far
the saga follower has read the events (collectors/saga_follower.py).

One row per (cluster, saga id). The whole reconstructed history -- each event with its step,
outcome and the rule that decided -- is the JSON document in `state` (collectors/saga_rules.py
reads and writes it); the other columns repeat what the list page filters and sorts on.
`version` grows with every derivation, so the periodic re-evaluation never
overwrites a newer state with an older one.

Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel


class Saga(SQLModel, table=True):
    __tablename__ = "sagas"

    cluster: str = Field(sa_column=Column(Text, primary_key=True))
    saga_id: str = Field(sa_column=Column(Text, primary_key=True))
    saga_type: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(sa_column=Column(Text, nullable=False))
    first_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    step_count: int = Field(nullable=False)
    failed: bool = Field(nullable=False)
    problem_count: int = Field(nullable=False)
    problems: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of strings
    state: str = Field(sa_column=Column(Text, nullable=False))  # SagaState.to_json()
    version: int = Field(nullable=False)
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))

    __table_args__ = (
        Index("ix_sagas_saga_id", "saga_id"),
        Index("ix_sagas_status_last", "status", "last_ms"),
        Index("ix_sagas_type_status", "saga_type", "status"),
        Index("ix_sagas_last", "last_ms"),
        Index("ix_sagas_first", "first_ms"),
    )


sagas_table = Saga.__table__  # type: ignore[attr-defined]


class SagaCursor(SQLModel, table=True):
    """The follower's durable cursor: every events row up to `last_id` has been derived.
    It moves in the transaction that writes the sagas it derived, so a crash loses nothing
    and derives nothing twice. One row, named 'sagas' (the migration creates it)."""

    __tablename__ = "saga_cursor"

    name: str = Field(sa_column=Column(Text, primary_key=True))
    last_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


saga_cursor_table = SagaCursor.__table__  # type: ignore[attr-defined]
