"""Replay and redrive jobs: the jobs page, one job with its progress and journal, the
new-job page (a dry run shown before the user confirms), and cancel.

JSON twins: GET/POST /api/actions, GET /api/actions/{id}, POST /api/actions/{id}/cancel.
Every create and cancel is written to the audit log (console/actions/jobs.py).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from typing_extensions import TypedDict

from console.actions.job_request import FILTER_FIELDS, RequestError, parse_request
from console.auth.roles import OPERATOR, VIEWER
from console.stores import jobs
from console.views.events import EVENT_FILTER
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import (
    BOOLEAN,
    INTEGER,
    STRING,
    Schema,
    array_of,
    enum,
    integer,
    p,
    q,
    shape,
)

MAX_BODY = 2 * 1024 * 1024
OPTION_FIELDS = ("kind", "cluster", "target_topic", "rate", "dry_run", "keep_error_headers",
                 "force", "include_ended_sagas")  # fmt: skip


class JobsJson(TypedDict):
    jobs: list[jobs.Job]


class JobDetailJson(jobs.Job):
    items: list[jobs.JobItem]
    item_states: dict[str, int]
    journal: list[jobs.JournalLine]


class CancelJson(TypedDict):
    id: int
    status: str


def _clusters(call: Call) -> list[str]:
    return [cluster.name for cluster in call.settings.clusters]


def request_from_params(params: QueryParams | FormData) -> dict[str, Any]:
    """A form or query string in the shape of the JSON API's body."""
    raw: dict[str, Any] = {name: params.get(name) for name in OPTION_FIELDS}
    raw["items"] = [str(v) for v in params.getlist("item")]
    raw["filter"] = {name: str(params.get(name)) for name in FILTER_FIELDS if params.get(name)}
    return raw


def _job_id(call: Call) -> int:
    try:
        job_id = int(call.path["job_id"])
    except ValueError:
        raise HTTPException(400, "job id must be an integer") from None
    if not 0 < job_id < 2**63:
        raise HTTPException(400, "job id out of range")
    return job_id


async def jobs_page(call: Call) -> Reply:
    status = call.query.get("status")
    if status not in (None, "", "active", "finished"):
        raise HTTPException(400, "status: active or finished")
    rows = await run_in_threadpool(jobs.list_jobs, call.engine, 100, status or None)
    return Reply(JobsJson(jobs=rows))


async def create_job_api(call: Call) -> Response:
    raw = await call.json_object(MAX_BODY)
    try:
        job_request = parse_request(raw, _clusters(call))
    except RequestError as exc:
        raise HTTPException(400, str(exc)) from None
    if job_request.options.dry_run:
        return JSONResponse(await run_in_threadpool(jobs.preview, call.engine, job_request))
    job_id = await run_in_threadpool(
        jobs.create_job, call.engine, job_request, call.actor, call.remote
    )
    job = await run_in_threadpool(jobs.get_job, call.engine, job_id)
    location = urls.job(job_id, api=True)
    return JSONResponse(job, status_code=201, headers={"Location": location})


async def new_job_page(call: Call) -> Reply:
    """The confirmation step: what would be sent, to where, and the form that does it."""
    raw = request_from_params(call.request.query_params)
    raw["kind"] = raw["kind"] or "replay"
    error = preview = None
    # Nothing selected yet ("New replay…"): the page asks what to send, no error.
    selecting = not raw["items"] and not raw["filter"]
    try:
        if not selecting:
            job_request = parse_request(raw, _clusters(call))
            preview = await run_in_threadpool(jobs.preview, call.engine, job_request)
    except RequestError as exc:
        error = str(exc)
    page = {
        "raw": raw, "preview": preview, "error": error, "selecting": selecting,
        "clusters": _clusters(call),
        "hidden": [(k, v) for k, v in call.request.query_params.multi_items()
                   if k in ("item", *FILTER_FIELDS, "cluster", "kind")],
    }  # fmt: skip
    return Reply({}, page=page, status=400 if error and preview is None else 200)


async def create_job_form(call: Call) -> Reply:
    form = await call.request.form()
    try:
        job_request = parse_request(request_from_params(form), _clusters(call))
    except RequestError as exc:
        raise HTTPException(400, str(exc)) from None
    job_id = await run_in_threadpool(
        jobs.create_job, call.engine, job_request, call.actor, call.remote
    )
    return Reply({"id": job_id}, redirect=urls.job(job_id))


async def job_page(call: Call) -> Reply:
    job_id = _job_id(call)
    state_filter = call.query.get("state") or None

    def load() -> tuple[
        jobs.Job | None, list[jobs.JournalLine], list[jobs.JobItem], dict[str, int]
    ]:
        job = jobs.get_job(call.engine, job_id)
        if job is None:
            return None, [], [], {}
        items = jobs.job_items(call.engine, job_id, state_filter)
        return (job, jobs.job_journal(call.engine, job_id), items,
                jobs.item_counts(call.engine, job_id))  # fmt: skip

    job, journal, items, counts = await run_in_threadpool(load)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    data = JobDetailJson(**job, items=items, item_states=counts, journal=journal)
    page = {"job": job, "journal": journal, "items": items, "counts": counts,
            "state_filter": state_filter}  # fmt: skip
    return Reply(data, page=page)


async def cancel_job(call: Call) -> Reply:
    job_id = _job_id(call)
    status = await run_in_threadpool(jobs.cancel_job, call.engine, job_id, call.actor, call.remote)
    if status is None:
        raise HTTPException(404, f"no job {job_id}")
    return Reply(CancelJson(id=job_id, status=status), redirect=urls.job(job_id))


EVENT_FILTER_BODY: Schema = {
    "type": "object",
    "description": "event search fields, as the /api/events query parameters",
    "properties": {param.name: STRING for param in EVENT_FILTER if param.name != "limit"},
}

ACTION_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "kind": enum("replay", "redrive"),
        "cluster": STRING,
        "items": array_of(
            {
                "oneOf": [
                    {"type": "string", "description": "topic/partition/offset"},
                    shape(topic=STRING, partition=INTEGER, offset=INTEGER),
                ]
            }
        ),
        "filter": EVENT_FILTER_BODY,
        "target_topic": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9._-]{1,249}$"},
        "rate": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1_000_000},
        "dry_run": BOOLEAN,
        "keep_error_headers": BOOLEAN,
        "force": BOOLEAN,
    },
    "required": ["kind"],
}

JOB = p("job_id", integer(), "the job id")

ENDPOINTS = [
    Endpoint(
        jobs_page, VIEWER, path="/actions", api="/api/actions", template="actions.html",
        summary="Replay and redrive jobs, newest first.",
        params=(q("status", enum("active", "finished")),), response=JobsJson, errors=(400,),
    ),
    Endpoint(create_job_form, OPERATOR, path="/actions", method="POST"),
    Endpoint(
        create_job_api, OPERATOR, api="/api/actions", method="POST",
        summary="Create a replay or redrive job, or preview it with dry_run.",
        body=ACTION_REQUEST, status=201, response=jobs.Job,
        other_responses=((200, "dry run: what would be sent, to where", jobs.JobPreview),),
        errors=(400, 413),
    ),
    Endpoint(new_job_page, OPERATOR, path="/actions/new", template="action_new.html"),
    Endpoint(
        job_page, VIEWER, path="/actions/{job_id}", api="/api/actions/{job_id}",
        template="action.html",
        summary="One job with its items, item state counts and journal.",
        params=(JOB, q("state", STRING, "only items in this state")),
        response=JobDetailJson, errors=(400, 404),
    ),
    Endpoint(job_page, VIEWER, path="/actions/{job_id}/progress", template="_action_live.html"),
    Endpoint(
        cancel_job, OPERATOR, path="/actions/{job_id}/cancel",
        api="/api/actions/{job_id}/cancel", method="POST",
        summary="Cancel a job (what was sent stays sent).", params=(JOB,),
        response=CancelJson, errors=(400, 404),
    ),
]  # fmt: skip
