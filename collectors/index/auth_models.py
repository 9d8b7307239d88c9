"""Users, browser sessions and API tokens. Secrets are stored only as hashes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    password_hash: str = Field(sa_column=Column(Text, nullable=False))  # argon2id
    role: str = Field(sa_column=Column(Text, nullable=False))
    disabled: bool = Field(default=False)
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class UserSession(SQLModel, table=True):
    __tablename__ = "user_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))  # sha256
    user_id: int = Field(nullable=False, index=True)
    csrf_token: str = Field(sa_column=Column(Text, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    remote: str | None = Field(default=None, sa_column=Column(Text))


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(Text, nullable=False))
    token_hash: str = Field(sa_column=Column(Text, nullable=False, unique=True))  # sha256
    prefix: str = Field(sa_column=Column(Text, nullable=False))  # shown to tell tokens apart
    role: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str = Field(sa_column=Column(Text, nullable=False))
    created_at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_used_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))
    revoked_at_ms: int | None = Field(default=None, sa_column=Column(BigInteger))

    __table_args__ = (Index("ix_api_tokens_created", "created_at_ms"),)


users_table = User.__table__  # type: ignore[attr-defined]
sessions_table = UserSession.__table__  # type: ignore[attr-defined]
tokens_table = ApiToken.__table__  # type: ignore[attr-defined]
