"""/healthz (the process is alive) and /readyz (the index and every cluster answer)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from collectors.kafka.admin import is_reachable
from console.state import app_state


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = app_state(request)

    def check_index() -> tuple[bool, str | None]:
        try:
            with state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True, None
        except Exception as exc:  # reported, not raised: this is a probe
            return False, f"{type(exc).__name__}: {exc}"[:300]

    index_ok, index_error = await run_in_threadpool(check_index)
    results = await asyncio.gather(
        *(is_reachable(cluster, timeout_s=5) for cluster in state.settings.clusters)
    )
    clusters = {
        cluster.name: {"ready": ok, "error": error}
        for cluster, (ok, error) in zip(state.settings.clusters, results, strict=True)
    }
    ready = index_ok and all(c["ready"] for c in clusters.values())
    body = {
        "ready": ready,
        "index": {"ready": index_ok, "error": index_error, "backend": state.engine.dialect.name},
        "clusters": clusters,
        "services": state.services.status(),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
