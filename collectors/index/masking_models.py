"""Masking rules managed in the console (console/masking_store.py writes them).

Rules from the configuration file are not stored here; both sets apply together.
Every change here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Text
from sqlmodel import Field, SQLModel


class MaskingRule(SQLModel, table=True):
    __tablename__ = "masking_rules"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    kind: str = Field(sa_column=Column(Text, nullable=False))  # header | json_path | regex
    pattern: str = Field(sa_column=Column(Text, nullable=False))
    topics: str | None = Field(default=None, sa_column=Column(Text))  # topic-name regex
    replacement: str = Field(sa_column=Column(Text, nullable=False))
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


masking_rules_table = MaskingRule.__table__  # type: ignore[attr-defined]
