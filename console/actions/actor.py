"""Who started an action. Access control replaces this one function when it lands."""

from __future__ import annotations

from starlette.requests import Request


def actor_of(request: Request) -> str:
    """The signed-in principal's name when there is one, else the client address."""
    principal = getattr(request.state, "principal", None)
    name = getattr(principal, "name", None)
    if isinstance(name, str) and name:
        return name[:100]
    return remote_of(request) or "anonymous"


def remote_of(request: Request) -> str | None:
    return request.client.host if request.client else None
