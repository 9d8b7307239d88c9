"""Replay and redrive jobs: the job, one item per record to send, and the job's journal.

A job is durable from the moment it is accepted: who asked, when, what was selected, where
it goes and with which options, its status and counters. Items carry the per-record state
(pending -> inflight -> sent | skipped | failed) and, once sent, where the copy landed, so
that a DLQ record's redrive status and history are one indexed look-up away.
`target_starts` (JSON) keeps the end offsets of each target partition at the moment the
job first wrote there: recovery after a crash scans from them (console/actions/runner.py).

Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from collectors.index.models import ROW_ID


class ActionJob(SQLModel, table=True):
    __tablename__ = "action_jobs"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    action_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    kind: str = Field(sa_column=Column(Text, nullable=False))  # redrive | replay
    cluster: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(sa_column=Column(Text, nullable=False))
    remote: str | None = Field(default=None, sa_column=Column(Text))
    selection: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    target_topic: str | None = Field(default=None, sa_column=Column(Text))
    options: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sent: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    skipped: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    failed: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    target_starts: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    lease_owner: str | None = Field(default=None, sa_column=Column(Text))
    lease_until_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    started_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    finished_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))

    __table_args__ = (
        Index("ix_action_jobs_status", "status"),
        Index("ix_action_jobs_created", "created_at_ms"),
    )


class ActionItem(SQLModel, table=True):
    __tablename__ = "action_items"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    job_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))  # send order
    cluster: str = Field(sa_column=Column(Text, nullable=False))
    source_topic: str = Field(sa_column=Column(Text, nullable=False))
    source_partition: int = Field(sa_column=Column(Integer, nullable=False))
    source_offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))
    target_topic: str | None = Field(default=None, sa_column=Column(Text))
    target_partition: int | None = Field(default=None)
    target_offset: int | None = Field(default=None, sa_column=Column(BigInteger))
    note: str | None = Field(default=None, sa_column=Column(Text))
    done_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))

    __table_args__ = (
        Index("ux_action_items_job_seq", "job_id", "seq", unique=True),
        Index("ix_action_items_job_state", "job_id", "state"),
        Index("ix_action_items_source", "cluster", "source_topic", "source_partition",
              "source_offset"),
        Index("ix_action_items_target", "target_topic", "target_partition", "target_offset",
              sqlite_where=text("target_offset IS NOT NULL"),
              postgresql_where=text("target_offset IS NOT NULL")),
    )  # fmt: skip


class ActionJournal(SQLModel, table=True):
    __tablename__ = "action_journal"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    job_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    level: str = Field(sa_column=Column(Text, nullable=False))  # info | warning | error
    message: str = Field(sa_column=Column(Text, nullable=False))

    __table_args__ = (Index("ix_action_journal_job", "job_id", "id"),)


jobs_table = ActionJob.__table__  # type: ignore[attr-defined]
items_table = ActionItem.__table__  # type: ignore[attr-defined]
journal_table = ActionJournal.__table__  # type: ignore[attr-defined]
