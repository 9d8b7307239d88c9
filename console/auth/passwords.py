"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's guidance)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
MIN_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"passwords need at least {MIN_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_password() -> str:
    return secrets.token_urlsafe(18)


# A hash to verify against when the user does not exist, so that a wrong user name
# takes as long as a wrong password.
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
