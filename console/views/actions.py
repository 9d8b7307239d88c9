"""Replay and redrive jobs: the jobs page, one job with its progress and journal, the
new-job page (a dry run shown before the user confirms), and cancel.

JSON twins: GET/POST /api/actions, GET /api/actions/{id}, POST /api/actions/{id}/cancel.
Every create and cancel is written to the audit log (console/actions/jobs.py).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from console.actions.actor import actor_of, remote_of
from console.state import app_state
from console.stores import jobs

MAX_BODY = 2 * 1024 * 1024
OPTION_FIELDS = ("kind", "cluster", "target_topic", "rate", "dry_run", "keep_error_headers",
                 "force")  # fmt: skip


def _clusters(request: Request) -> list[str]:
    return [cluster.name for cluster in app_state(request).settings.clusters]


def request_from_params(params: QueryParams | FormData) -> dict[str, Any]:
    """A form or query string in the shape of the JSON API's body."""
    raw: dict[str, Any] = {name: params.get(name) for name in OPTION_FIELDS}
    raw["items"] = [str(v) for v in params.getlist("item")]
    raw["filter"] = {name: str(params.get(name)) for name in jobs.FILTER_FIELDS if params.get(name)}
    return raw


def _job_id(request: Request) -> int:
    try:
        job_id = int(request.path_params["job_id"])
    except ValueError:
        raise HTTPException(400, "job id must be an integer") from None
    if not 0 < job_id < 2**63:
        raise HTTPException(400, "job id out of range")
    return job_id


async def jobs_page(request: Request) -> Response:
    state = app_state(request)
    status = request.query_params.get("status")
    if status not in (None, "", "active", "finished"):
        raise HTTPException(400, "status: active or finished")
    rows = await run_in_threadpool(jobs.list_jobs, state.engine, 100, status or None)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"jobs": rows})
    return state.templates.TemplateResponse(request, "actions.html", {"jobs": rows})


async def create_job_api(request: Request) -> Response:
    state = app_state(request)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "request body too large")
    try:
        raw = json.loads(body or b"{}")
    except ValueError:
        raise HTTPException(400, "body: not JSON") from None
    if not isinstance(raw, dict):
        raise HTTPException(400, "body: a JSON object")
    try:
        job_request = jobs.parse_request(raw, _clusters(request))
    except jobs.RequestError as exc:
        raise HTTPException(400, str(exc)) from None
    if job_request.options.dry_run:
        return JSONResponse(await run_in_threadpool(jobs.preview, state.engine, job_request))
    job_id = await run_in_threadpool(
        jobs.create_job, state.engine, job_request, actor_of(request), remote_of(request)
    )
    job = await run_in_threadpool(jobs.get_job, state.engine, job_id)
    return JSONResponse(job, status_code=201, headers={"Location": f"/api/actions/{job_id}"})


async def new_job_page(request: Request) -> Response:
    """The confirmation step: what would be sent, to where, and the form that does it."""
    state = app_state(request)
    raw = request_from_params(request.query_params)
    raw["kind"] = raw["kind"] or "replay"
    error = preview = None
    try:
        job_request = jobs.parse_request(raw, _clusters(request))
        preview = await run_in_threadpool(jobs.preview, state.engine, job_request)
    except jobs.RequestError as exc:
        error = str(exc)
    context = {
        "raw": raw, "preview": preview, "error": error,
        "hidden": [(k, v) for k, v in request.query_params.multi_items()
                   if k in ("item", *jobs.FILTER_FIELDS, "cluster", "kind")],
    }  # fmt: skip
    return state.templates.TemplateResponse(
        request, "action_new.html", context, status_code=400 if error and preview is None else 200
    )


async def create_job_form(request: Request) -> Response:
    state = app_state(request)
    form = await request.form()
    try:
        job_request = jobs.parse_request(request_from_params(form), _clusters(request))
    except jobs.RequestError as exc:
        raise HTTPException(400, str(exc)) from None
    job_id = await run_in_threadpool(
        jobs.create_job, state.engine, job_request, actor_of(request), remote_of(request)
    )
    return RedirectResponse(f"/actions/{job_id}", status_code=303)


async def job_page(request: Request) -> Response:
    state = app_state(request)
    job_id = _job_id(request)

    def load() -> tuple[Any, ...]:
        job = jobs.get_job(state.engine, job_id)
        if job is None:
            return None, [], [], {}
        items = jobs.job_items(state.engine, job_id, request.query_params.get("state") or None)
        return (job, jobs.job_journal(state.engine, job_id), items,
                jobs.item_counts(state.engine, job_id))  # fmt: skip

    job, journal, items, counts = await run_in_threadpool(load)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    if request.url.path.startswith("/api/"):
        return JSONResponse({**job, "items": items, "item_states": counts, "journal": journal})
    template = "_action_progress.html" if request.url.path.endswith("/progress") else "action.html"
    context = {"job": job, "journal": journal, "items": items, "counts": counts}
    return state.templates.TemplateResponse(request, template, context)


async def cancel_job(request: Request) -> Response:
    state = app_state(request)
    job_id = _job_id(request)
    status = await run_in_threadpool(
        jobs.cancel_job, state.engine, job_id, actor_of(request), remote_of(request)
    )
    if status is None:
        raise HTTPException(404, f"no job {job_id}")
    if request.url.path.startswith("/api/"):
        return JSONResponse({"id": job_id, "status": status})
    return RedirectResponse(f"/actions/{job_id}", status_code=303)


routes = [
    Route("/actions", jobs_page, methods=["GET"]),
    Route("/actions", create_job_form, methods=["POST"]),
    Route("/api/actions", jobs_page, methods=["GET"]),
    Route("/api/actions", create_job_api, methods=["POST"]),
    Route("/actions/new", new_job_page),
    Route("/actions/{job_id}", job_page),
    Route("/actions/{job_id}/progress", job_page),
    Route("/api/actions/{job_id}", job_page),
    Route("/actions/{job_id}/cancel", cancel_job, methods=["POST"]),
    Route("/api/actions/{job_id}/cancel", cancel_job, methods=["POST"]),
]
