"""Roles, from least to most powerful; each one may do everything the ones before it may."""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
PUBLIC = "public"


def rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def allows(role: str, required: str) -> bool:
    if required == PUBLIC:
        return True
    return rank(role) >= rank(required) >= 0


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    return role
