"""/healthz (the process is alive) and /readyz (the index and every cluster answer, and
records reach the index: no index write stalled or failing)."""

from __future__ import annotations

import asyncio
import time

from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from collectors.index.engine import index_problem
from collectors.kafka.admin import is_reachable
from collectors.services import ServiceStatus
from console.auth.roles import PUBLIC
from console.web.endpoints import Call, Endpoint, Reply


class Health(TypedDict):
    status: str


class Check(TypedDict):
    ready: bool
    error: str | None


class IndexCheck(Check):
    backend: str


class Readiness(TypedDict):
    ready: bool
    index: IndexCheck
    clusters: dict[str, Check]
    services: dict[str, ServiceStatus]  # each background service: running, last success/error
    pipeline: list[str]  # why records are not reaching the index (stalled or failing writes)


async def healthz(call: Call) -> Reply:
    return Reply(Health(status="ok"))


async def readyz(call: Call) -> Reply:
    state = call.state

    index_error = await run_in_threadpool(index_problem, state.engine)
    index_ok = index_error is None
    results = await asyncio.gather(
        *(is_reachable(cluster, timeout_s=5) for cluster in state.settings.clusters)
    )
    clusters = {
        cluster.name: Check(ready=ok, error=error)
        for cluster, (ok, error) in zip(state.settings.clusters, results, strict=True)
    }
    pipeline = state.services.problems(time.time())
    ready = index_ok and all(c["ready"] for c in clusters.values()) and not pipeline
    body = Readiness(
        ready=ready,
        index=IndexCheck(ready=index_ok, error=index_error, backend=state.engine.dialect.name),
        clusters=clusters,
        services=state.services.status(),
        pipeline=pipeline,
    )
    return Reply(body, status=200 if ready else 503)


ENDPOINTS = [
    Endpoint(healthz, PUBLIC, api="/healthz", summary="The process is alive.", response=Health),
    Endpoint(
        readyz,
        PUBLIC,
        api="/readyz",
        response=Readiness,
        summary="Ready: the index and every cluster answer, index writes go through.",
        other_responses=((503, "not ready: the body says what is not", Readiness),),
    ),
]
