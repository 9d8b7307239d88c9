"""The audit log: one append-only row per action somebody took (console/audit.py writes it).

Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from collectors.index.models import ROW_ID


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None, sa_column=Column(ROW_ID, primary_key=True, autoincrement=True)
    )
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    actor: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    target: str | None = Field(default=None, sa_column=Column(Text))
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    remote: str | None = Field(default=None, sa_column=Column(Text))

    __table_args__ = (
        Index("ix_audit_log_at", "at_ms"),
        Index("ix_audit_log_actor", "actor", "at_ms"),
    )


audit_table = AuditEntry.__table__  # type: ignore[attr-defined]
