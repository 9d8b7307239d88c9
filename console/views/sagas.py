"""Sagas: every instance with its status, and one saga's timeline.

Pages: /sagas (counts by type and status, filters, sort; stuck ones first) and
/sagas/{saga_id} (a Gantt of its steps and compensations, its steps and events).
JSON twins: /api/sagas and /api/sagas/{saga_id}. Statuses that depend on the clock are
evaluated again at read time, so a page is never older than the request; the sagas are
derived from the events after ingest (collectors/saga_follower.py), so every page and twin
says how far they trail the index ("sagas up to 0.4 s ago").
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from typing_extensions import TypedDict

from collectors.saga_follower import FollowerLag
from collectors.saga_state import StepProgress, StepRecord
from console.auth.roles import VIEWER
from console.saga_timeline import build_timeline, event_link
from console.stores import sagas as store
from console.stores.sagas import DEFAULT_LIMIT, STATUSES, SagaFilter
from console.templating import timestamp_ms
from console.web import urls
from console.web.endpoints import Call, Endpoint, Reply
from console.web.schema import STRING, enum, integer, p, q, text

STATUS_BADGE = {
    "stuck": "err",
    "compensation_incomplete": "err",
    "failed": "err",
    "compensating": "warn",
    "running": "muted",
    "compensated": "ok",
    "completed": "ok",
}
SORTS = ("priority", "newest", "oldest", "recent", "longest")
MAX_LIMIT = 500
MAX_OFFSET = 100_000
MAX_FILTER_CHARS = 512
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


class FilterError(ValueError):
    pass


def _text(params: QueryParams, name: str) -> str:
    value = params.get(name, "").strip()
    if len(value) > MAX_FILTER_CHARS:
        raise FilterError(f"{name}: longer than {MAX_FILTER_CHARS} characters")
    return value


def _integer(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise FilterError(f"{name}: expected a whole number from {low} to {high}")
    return int(raw)


def parse_duration_s(text: str) -> float:
    """'90', '90s', '5m', '2h', '1.5d' -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise FilterError(f"min_age: expected a duration such as 30s, 5m, 2h or 1d, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def parse_filter(params: QueryParams) -> SagaFilter:
    statuses: list[str] = []
    for raw in params.getlist("status"):
        for item in raw.split(","):
            item = item.strip().lower()
            if not item:
                continue
            if item not in STATUSES:
                raise FilterError(
                    f"status: unknown status {item[:40]!r} (known: {', '.join(STATUSES)})"
                )
            if item not in statuses:
                statuses.append(item)
    sort = params.get("sort", "").strip() or "priority"
    if sort not in SORTS:
        raise FilterError(f"sort: expected one of {', '.join(SORTS)}")
    min_age = _text(params, "min_age")
    problems = params.get("problems", "").strip()
    if problems not in ("", "0", "1"):
        raise FilterError("problems: expected 1 or 0")
    return SagaFilter(
        statuses=tuple(statuses),
        saga_type=_text(params, "type"),
        cluster=_text(params, "cluster"),
        saga_id=_text(params, "id"),
        min_age=min_age,
        min_age_s=parse_duration_s(min_age) if min_age else None,
        problems_only=problems == "1",
        sort=sort,
        limit=_integer(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_integer(params, "offset", 0, 0, MAX_OFFSET),
    )


# --------------------------------------------------------------------------- reading


# --------------------------------------------------------------------------- timeline


# --------------------------------------------------------------------------- JSON


class FreshnessJson(TypedDict):
    """How far the sagas trail the index: the age of the oldest indexed event they do not
    reflect yet (0 and up_to_date when they reflect every one)."""

    behind_s: float
    up_to_date: bool


def freshness_json(lag: FollowerLag) -> FreshnessJson:
    return FreshnessJson(behind_s=round(lag.behind_s, 3), up_to_date=not lag.pending)


class SagaLinks(TypedDict):
    self: str
    page: str


class SagaJsonBase(TypedDict):
    """What the list and the detail of a saga share."""

    cluster: str
    saga_id: str
    saga_type: str | None
    status: str
    first_ms: int
    last_ms: int


class SagaItemJson(SagaJsonBase):
    first: str
    last: str
    age_s: float
    duration_s: float
    events: int
    failed: bool
    failed_step: str | None  # the first step that failed
    problems: list[str]
    links: SagaLinks


class TypeCountJson(TypedDict):
    type: str | None
    total: int
    statuses: dict[str, int]


class SagaCountsJson(TypedDict):
    by_type: list[TypeCountJson]
    by_status: dict[str, int]


class SagasJson(TypedDict):
    sagas: list[SagaItemJson]
    freshness: FreshnessJson
    counts: SagaCountsJson
    limit: int
    offset: int
    next: str | None


class StepJson(TypedDict):
    name: str
    defined: bool
    state: str
    started_ms: int | None
    succeeded_ms: int | None
    failed_ms: int | None
    compensated_ms: int | None


class RecordJson(TypedDict):
    event_type: str | None
    topic: str
    timestamp_ms: int
    timestamp: str
    service: str | None
    step: str | None
    outcome: str
    rule: str | None
    event: str | None


class BarJson(TypedDict):
    kind: str
    step: str
    outcome: str
    start_ms: int | None
    end_ms: int | None
    waited_ms: int | None
    event: str | None
    events: list[str | None]


class SagaDetailLinks(SagaLinks):
    trace: str | None
    events: str | None


class SagaDetailJson(SagaJsonBase):
    duration_s: float
    problems: list[str]
    correlation_id: str | None
    trace_id: str | None
    failure: RecordJson | None
    steps: list[StepJson]
    events: list[RecordJson]
    timeline: list[BarJson]
    freshness: FreshnessJson
    links: SagaDetailLinks


def saga_links(cluster: str, saga_id: str) -> SagaLinks:
    return SagaLinks(self=urls.saga(cluster, saga_id, api=True), page=urls.saga(cluster, saga_id))


def list_item_json(row: Mapping[str, Any], now_ms: int) -> SagaItemJson:
    return SagaItemJson(
        cluster=row["cluster"],
        saga_id=row["saga_id"],
        saga_type=row["saga_type"],
        status=row["status"],
        first_ms=row["first_ms"],
        last_ms=row["last_ms"],
        first=timestamp_ms(row["first_ms"]),
        last=timestamp_ms(row["last_ms"]),
        age_s=max(now_ms - row["first_ms"], 0) / 1000,
        duration_s=max(row["last_ms"] - row["first_ms"], 0) / 1000,
        events=row["step_count"],
        failed=row["failed"],
        failed_step=row["failed_step"],
        problems=row["problems"],
        links=saga_links(row["cluster"], row["saga_id"]),
    )


def step_json(step: StepProgress) -> StepJson:
    return StepJson(
        name=step.name,
        defined=step.defined,
        state=step.state,
        started_ms=step.started_ms,
        succeeded_ms=step.succeeded_ms,
        failed_ms=step.failed_ms,
        compensated_ms=step.compensated_ms,
    )


def record_json(record: StepRecord) -> RecordJson:
    return RecordJson(
        event_type=record.event_type,
        topic=record.topic,
        timestamp_ms=record.timestamp_ms,
        timestamp=timestamp_ms(record.timestamp_ms),
        service=record.service,
        step=record.step,
        outcome=str(record.outcome),
        rule=record.rule,
        event=event_link(record.event_key),
    )


# --------------------------------------------------------------------------- handlers


async def sagas_page(call: Call) -> Reply:
    try:
        f = parse_filter(call.request.query_params)
    except FilterError as exc:
        if call.api:
            raise HTTPException(400, str(exc)) from None
        page = {"filter": SagaFilter(), "error": str(exc), "result": None, "query": {}}
        return Reply({}, page=_page_context(page), status=400)
    now_ms = int(time.time() * 1000)
    result = await run_in_threadpool(
        store.list_sagas, call.engine, f, call.state.areas.sagas, now_ms
    )
    lag = await run_in_threadpool(store.saga_freshness, call.engine, now_ms)
    next_args = f.query_args(offset=f.offset + f.limit) if result.has_more else None
    data = SagasJson(
        sagas=[list_item_json(row, now_ms) for row in result.rows],
        freshness=freshness_json(lag),
        counts=SagaCountsJson(
            by_type=result.counts,  # type: ignore[typeddict-item]
            by_status=result.status_totals,
        ),
        limit=f.limit,
        offset=f.offset,
        next=_with_query("/api/sagas", next_args),
    )
    page = {
        "filter": f,
        "error": None,
        "result": result,
        "now_ms": now_ms,
        "query": call.query,
        "next_url": _with_query("/sagas", next_args),
        "freshness": lag,
    }
    return Reply(data, page=_page_context(page))


def _with_query(path: str, args: dict[str, str] | None) -> str | None:
    return f"{path}?{urlencode(args)}" if args else None


def _page_context(context: dict[str, Any]) -> dict[str, Any]:
    return {
        **context,
        "statuses": STATUSES,
        "sorts": SORTS,
        "badge": STATUS_BADGE,
    }


async def saga_detail(call: Call) -> Reply:
    saga_id = call.path["saga_id"]
    cluster = call.query.get("cluster", "").strip()
    if len(saga_id) > 2 * MAX_FILTER_CHARS or len(cluster) > MAX_FILTER_CHARS:
        raise HTTPException(400, "saga id or cluster too long")
    found = await run_in_threadpool(store.find_sagas, call.engine, saga_id, cluster)
    if not found:
        raise HTTPException(404, f"no saga {saga_id[:200]!r} in the index")
    if len(found) > 1:
        clusters = ", ".join(sorted(row["cluster"] for row in found))
        raise HTTPException(
            400, f"saga {saga_id[:200]!r} exists in clusters {clusters}: add ?cluster="
        )
    row = found[0]
    options = call.state.areas.sagas
    saga, ids = await run_in_threadpool(
        store.load_saga, call.engine, row["cluster"], row["saga_id"], row["state"], options
    )
    now_ms = int(time.time() * 1000)
    lag = await run_in_threadpool(store.saga_freshness, call.engine, now_ms)
    status = str(saga.evaluate(now_ms, options.rules, options.stuck_after_s))
    progress = saga.step_progress(options.rules)
    open_ended = status in ("running", "stuck")
    timeline = build_timeline(saga, progress, now_ms, open_ended)
    correlation = ids["correlation_id"]
    reference = correlation or ids["trace_id"]  # what the trace page looks up
    links = SagaDetailLinks(
        **saga_links(row["cluster"], row["saga_id"]),
        trace=urls.trace(reference) if reference else None,
        events=urls.events(correlation_id=correlation) if correlation else None,
    )
    summary = {
        "cluster": row["cluster"],
        "saga_id": saga.saga_id,
        "saga_type": saga.saga_type,
        "status": status,
        "first_ms": saga.first_ms,
        "last_ms": saga.last_ms,
        "duration_s": (saga.last_ms - saga.first_ms) / 1000,
        "problems": list(saga.problems),
        "correlation_id": correlation,
        "trace_id": ids["trace_id"],
    }
    data = SagaDetailJson(
        **summary,  # type: ignore[typeddict-item]
        failure=record_json(timeline.failure) if timeline.failure else None,
        steps=[step_json(step) for step in progress],
        events=[record_json(record) for record in saga.steps],
        timeline=[bar.as_json() for bar in timeline.bars],
        freshness=freshness_json(lag),
        links=links,
    )
    page = {
        "saga": summary,
        "steps": progress,
        "records": saga.steps,
        "timeline": timeline,
        "links": links,
        "badge": STATUS_BADGE,
        "event_link": event_link,
        "now_ms": now_ms,
        "freshness": lag,
    }
    return Reply(data, page=page)


FILTER_TEXT = text(MAX_FILTER_CHARS)

ENDPOINTS = [
    Endpoint(
        sagas_page, VIEWER, path="/sagas", api="/api/sagas", template="sagas.html",
        partial="_sagas_table.html",
        summary="Saga instances with counts by type and status; what needs a human first.",
        params=(
            q("status", STRING, "comma-separated statuses"),
            q("type", FILTER_TEXT),
            q("cluster", FILTER_TEXT),
            q("id", FILTER_TEXT, "saga id prefix"),
            q("min_age", FILTER_TEXT, "a duration such as 30s, 5m, 2h or 1d"),
            q("problems", enum("1", "0")),
            q("sort", enum(*SORTS)),
            q("limit", integer(1, MAX_LIMIT)),
            q("offset", integer(0, MAX_OFFSET)),
        ),
        response=SagasJson, errors=(400,),
    ),
    Endpoint(
        saga_detail, VIEWER, path="/sagas/{saga_id:text}", api="/api/sagas/{saga_id:text}",
        template="saga.html",
        summary="One saga: status, steps, events and the timeline bars.",
        params=(p("saga_id", text(2 * MAX_FILTER_CHARS)), q("cluster", FILTER_TEXT)),
        response=SagaDetailJson, errors=(400, 404),
    ),
]  # fmt: skip
