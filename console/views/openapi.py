"""GET /api/openapi.json: the OpenAPI 3.1 description of every JSON twin, built from the
endpoint declarations (console/web/openapi.py)."""

from __future__ import annotations

from typing import Any

from console.auth.roles import VIEWER
from console.web import openapi
from console.web.endpoints import Call, Endpoint, Reply


def build_document(server_url: str | None = None) -> dict[str, Any]:
    from console.views import registry  # the registry lists this module too

    return openapi.build_document(registry.all_endpoints(), server_url)


async def openapi_document(call: Call) -> Reply:
    return Reply(build_document(str(call.request.base_url).rstrip("/")))


ENDPOINTS = [
    Endpoint(
        openapi_document, VIEWER, api="/api/openapi.json",
        summary="This document (OpenAPI 3.1).", response={"type": "object"},
    ),
]  # fmt: skip
