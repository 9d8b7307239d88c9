"""Users, sessions and API tokens in the index.

Session and API tokens are random 256-bit secrets; only their SHA-256 is stored, so a copy
of the index does not let anyone in. API tokens are shown once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from collectors.index.auth_models import sessions_table, tokens_table, users_table
from console.auth.passwords import (
    DUMMY_HASH,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from console.auth.roles import check_role

SESSION_TTL_S = 12 * 3600
TOKEN_PREFIX = "esk_"  # noqa: S105  (a marker, not a secret)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking, and how they proved it."""

    name: str
    role: str
    via: str  # "session", "token", "proxy", "auth-off"
    csrf_token: str | None = None
    user_id: int | None = None


# --- users ---------------------------------------------------------------------------------


def create_user(engine: Engine, username: str, password: str, role: str) -> int:
    username = username.strip()
    if not username or len(username) > 100 or not username.isprintable():
        raise ValueError("user names are 1-100 printable characters")
    check_role(role)
    with engine.begin() as connection:
        if connection.execute(
            select(users_table.c.id).where(func.lower(users_table.c.username) == username.lower())
        ).first():
            raise ValueError(f"user {username!r} exists")
        result = connection.execute(
            insert(users_table).values(
                username=username, password_hash=hash_password(password), role=role,
                disabled=False, created_at_ms=_now_ms(),
            )
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def list_users(engine: Engine) -> list[dict[str, Any]]:
    columns = [c for c in users_table.c if c.name != "password_hash"]
    with engine.connect() as connection:
        rows = connection.execute(select(*columns).order_by(users_table.c.username))
        return [dict(r._mapping) for r in rows]


def update_user(
    engine: Engine,
    username: str,
    *,
    role: str | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> None:
    values: dict[str, Any] = {}
    if role is not None:
        values["role"] = check_role(role)
    if password is not None:
        values["password_hash"] = hash_password(password)
    if disabled is not None:
        values["disabled"] = disabled
    if not values:
        raise ValueError("nothing to change: give role, password or disabled")
    with engine.begin() as connection:
        result = connection.execute(
            update(users_table).where(users_table.c.username == username).values(**values)
        )
        if result.rowcount == 0:
            raise ValueError(f"no user {username!r}")
        if disabled or password is not None:
            user_id = connection.execute(
                select(users_table.c.id).where(users_table.c.username == username)
            ).scalar_one()
            connection.execute(sessions_table.delete().where(sessions_table.c.user_id == user_id))


def authenticate(engine: Engine, username: str, password: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(users_table).where(func.lower(users_table.c.username) == username.lower())
        ).first()
    if row is None:
        verify_password(DUMMY_HASH, password)
        return None
    user = dict(row._mapping)
    if not verify_password(user["password_hash"], password) or user["disabled"]:
        return None
    if needs_rehash(user["password_hash"]):
        update_user(engine, user["username"], password=password)
    return user


def role_of(engine: Engine, username: str) -> str | None:
    """The role of an enabled user, or None."""
    with engine.connect() as connection:
        row = connection.execute(
            select(users_table.c.role, users_table.c.disabled).where(
                func.lower(users_table.c.username) == username.lower()
            )
        ).first()
    return None if row is None or row.disabled else str(row.role)


def has_users(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(users_table)).scalar_one() > 0


def ensure_admin(engine: Engine, password: str | None) -> str | None:
    """On an empty index create 'admin'; return the generated password (None otherwise)."""
    if has_users(engine):
        return None
    generated = None
    if not password:
        password = generated = generate_password()
    create_user(engine, "admin", password, "admin")
    return generated


# --- sessions --------------------------------------------------------------------------------


def create_session(engine: Engine, user_id: int, remote: str | None) -> tuple[str, str]:
    """A new session for the user: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = _now_ms()
    with engine.begin() as connection:
        connection.execute(
            insert(sessions_table).values(
                token_hash=_digest(token), user_id=user_id, csrf_token=csrf, created_at_ms=now,
                expires_at_ms=now + SESSION_TTL_S * 1000, remote=(remote or "")[:100],
            )
        )  # fmt: skip
        connection.execute(sessions_table.delete().where(sessions_table.c.expires_at_ms < now))
    return token, csrf


def session_principal(engine: Engine, token: str) -> Principal | None:
    query = (
        select(users_table.c.id, users_table.c.username, users_table.c.role,
               users_table.c.disabled, sessions_table.c.csrf_token, sessions_table.c.expires_at_ms)
        .join(users_table, users_table.c.id == sessions_table.c.user_id)
        .where(sessions_table.c.token_hash == _digest(token))
    )  # fmt: skip
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None or row.disabled or row.expires_at_ms < _now_ms():
        return None
    return Principal(row.username, row.role, "session", row.csrf_token, row.id)


def end_session(engine: Engine, token: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            sessions_table.delete().where(sessions_table.c.token_hash == _digest(token))
        )


# --- API tokens --------------------------------------------------------------------------------


def create_token(engine: Engine, name: str, role: str, created_by: str) -> tuple[int, str]:
    """Create a token; return (id, the token). The token is never retrievable again."""
    check_role(role)
    name = name.strip()[:100] or "token"
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as connection:
        result = connection.execute(
            insert(tokens_table).values(
                name=name, token_hash=_digest(token), prefix=token[:10], role=role,
                created_by=created_by, created_at_ms=_now_ms(),
            )
        )  # fmt: skip
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0]), token


# A token's last use is written at most this often: writing it on every request made each
# API call a write transaction, and concurrent calls queued for SQLite's one writer.
LAST_USED_EVERY_MS = 60_000


def token_principal(engine: Engine, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    with engine.connect() as connection:
        row = connection.execute(
            select(tokens_table).where(tokens_table.c.token_hash == _digest(token))
        ).first()
        if row is None or row.revoked_at_ms is not None:
            return None
        now = _now_ms()
        if row.last_used_at_ms is None or now - row.last_used_at_ms >= LAST_USED_EVERY_MS:
            connection.execute(
                update(tokens_table).where(tokens_table.c.id == row.id).values(last_used_at_ms=now)
            )
            connection.commit()
    return Principal(f"token:{row.name}", row.role, "token")


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    columns = [c for c in tokens_table.c if c.name != "token_hash"]
    with engine.connect() as connection:
        rows = connection.execute(select(*columns).order_by(tokens_table.c.created_at_ms.desc()))
        return [dict(r._mapping) for r in rows]


def revoke_token(engine: Engine, token_id: int) -> bool:
    with engine.begin() as connection:
        result = connection.execute(
            update(tokens_table)
            .where(tokens_table.c.id == token_id, tokens_table.c.revoked_at_ms.is_(None))
            .values(revoked_at_ms=_now_ms())
        )
    return result.rowcount > 0
