"""Sagas: every instance with its status, and one saga's timeline.

Pages: /sagas (counts by type and status, filters, sort; stuck ones first) and
/sagas/{saga_id} (a Gantt of its steps and compensations, its steps and events).
JSON twins: /api/sagas and /api/sagas/{saga_id}. Statuses that depend on the clock are
evaluated again at read time, so a page is never older than the request.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Engine, case, func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors.index.identity import identity_equals
from collectors.index.models import events_table
from collectors.index.saga_models import sagas_table
from collectors.saga_rules import (
    Outcome,
    SagaState,
    SagaStatus,
    StepProgress,
    StepRecord,
)
from collectors.sagas import (
    TIME_DEPENDENT,
    SagaOptions,
    parse_event_key,
    rebuild_state,
    saga_options,
)
from console.state import app_state
from console.templating import timestamp_ms
from console.views.requests import is_api

STATUSES = tuple(str(status) for status in SagaStatus)
# The list's default order: what needs a human first.
STATUS_PRIORITY = {
    "stuck": 0,
    "compensation_incomplete": 1,
    "failed": 2,
    "compensating": 3,
    "running": 4,
    "compensated": 5,
    "completed": 6,
}
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
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_OFFSET = 100_000
MAX_FILTER_CHARS = 512
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class SagaFilter:
    statuses: tuple[str, ...] = ()
    saga_type: str = ""
    cluster: str = ""
    saga_id: str = ""  # a prefix
    min_age: str = ""
    min_age_s: float | None = None
    problems_only: bool = False
    sort: str = "priority"
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def query_args(self, **changes: Any) -> dict[str, str]:
        args = {
            "status": ",".join(self.statuses),
            "type": self.saga_type,
            "cluster": self.cluster,
            "id": self.saga_id,
            "min_age": self.min_age,
            "problems": "1" if self.problems_only else "",
            "sort": "" if self.sort == "priority" else self.sort,
            "limit": "" if self.limit == DEFAULT_LIMIT else str(self.limit),
            "offset": str(self.offset) if self.offset else "",
        }
        args.update({key: str(value) for key, value in changes.items()})
        return {key: value for key, value in args.items() if value}


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


def options_of(request: Request) -> SagaOptions:
    """The saga rules of this app's settings, built once (they cache classifications)."""
    cached: SagaOptions | None = getattr(request.app.state, "saga_options", None)
    if cached is None:
        cached = saga_options(app_state(request).settings.sagas)
        request.app.state.saga_options = cached
    return cached


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _order(sort: str) -> list[Any]:
    c = sagas_table.c
    if sort == "newest":
        return [c.first_ms.desc()]
    if sort == "oldest":
        return [c.first_ms.asc()]
    if sort == "recent":
        return [c.last_ms.desc()]
    if sort == "longest":
        return [(c.last_ms - c.first_ms).desc()]
    return [case(STATUS_PRIORITY, value=c.status, else_=9), c.last_ms.desc()]


@dataclass
class SagaList:
    rows: list[dict[str, Any]]
    counts: list[dict[str, Any]]  # per saga type: total and per status
    status_totals: dict[str, int]
    has_more: bool


def list_sagas(engine: Engine, f: SagaFilter, options: SagaOptions, now_ms: int) -> SagaList:
    c = sagas_table.c
    conditions: list[Any] = []
    if f.statuses:
        conditions.append(c.status.in_(f.statuses))
    if f.saga_type:
        conditions.append(
            c.saga_type.is_(None) if f.saga_type == "-" else c.saga_type == f.saga_type
        )
    if f.cluster:
        conditions.append(c.cluster == f.cluster)
    if f.saga_id:
        conditions.append(c.saga_id.like(_like_prefix(f.saga_id), escape="\\"))
    if f.min_age_s is not None:
        conditions.append(c.first_ms <= now_ms - int(f.min_age_s * 1000))
    if f.problems_only:
        conditions.append(c.problem_count > 0)
    time_dependent = [str(status) for status in TIME_DEPENDENT]
    query = (
        select(
            c.cluster, c.saga_id, c.saga_type, c.status, c.first_ms, c.last_ms, c.step_count,
            c.failed, c.problems,
            case((c.status.in_(time_dependent), c.state), else_=None).label("state"),
        )
        .where(*conditions)
        .order_by(*_order(f.sort), c.cluster, c.saga_id)
        .limit(f.limit + 1)
        .offset(f.offset)
    )  # fmt: skip
    count_query = select(c.saga_type, c.status, func.count()).group_by(c.saga_type, c.status)
    if f.cluster:
        count_query = count_query.where(c.cluster == f.cluster)
    with engine.connect() as connection:
        found = [dict(row) for row in connection.execute(query).mappings()]
        grouped = connection.execute(count_query).all()
    rows = [_list_row(row, options, now_ms) for row in found[: f.limit]]
    by_type: dict[str | None, dict[str, Any]] = {}
    totals = dict.fromkeys(STATUSES, 0)
    for saga_type, status, count in grouped:
        entry = by_type.setdefault(saga_type, {"type": saga_type, "total": 0, "statuses": {}})
        entry["total"] += count
        entry["statuses"][status] = entry["statuses"].get(status, 0) + count
        totals[status] = totals.get(status, 0) + count
    counts = sorted(by_type.values(), key=lambda e: (e["type"] is None, e["type"] or ""))
    return SagaList(rows, counts, totals, has_more=len(found) > f.limit)


def _list_row(row: dict[str, Any], options: SagaOptions, now_ms: int) -> dict[str, Any]:
    problems = _json_list(row["problems"])
    status = row["status"]
    if row["state"] is not None:
        try:
            state = SagaState.from_json(row["state"])
        except ValueError:
            pass
        else:
            status = str(state.evaluate(now_ms, options.rules, options.stuck_after_s))
            problems = list(state.problems)
    return {
        "cluster": row["cluster"],
        "saga_id": row["saga_id"],
        "saga_type": row["saga_type"],
        "status": status,
        "first_ms": row["first_ms"],
        "last_ms": row["last_ms"],
        "step_count": row["step_count"],
        "failed": bool(row["failed"]),
        "problems": problems,
    }


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


def find_sagas(engine: Engine, saga_id: str, cluster: str) -> list[dict[str, Any]]:
    c = sagas_table.c
    query = select(c.cluster, c.saga_id, c.state).where(c.saga_id == saga_id)
    if cluster:
        query = query.where(c.cluster == cluster)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query.limit(20)).mappings()]


def load_saga(
    engine: Engine, cluster: str, saga_id: str, document: str, options: SagaOptions
) -> tuple[SagaState, dict[str, str | None]]:
    """The saga's state (rebuilt from its events if the stored one is unusable) and the
    correlation and trace ids of its events, for the links to the trace."""
    columns = events_table.c
    ids: dict[str, str | None] = {"correlation_id": None, "trace_id": None}
    with engine.connect() as connection:
        try:
            state = SagaState.from_json(document)
        except ValueError:
            state = rebuild_state(connection, cluster, saga_id, options)
        for name in ids:
            column = columns[name]
            ids[name] = connection.execute(
                select(column)
                .where(identity_equals("saga_id", saga_id, cluster), column.isnot(None))
                .limit(1)
            ).scalar()
    return state, ids


# --------------------------------------------------------------------------- timeline


def event_link(key: str) -> str | None:
    coordinates = parse_event_key(key)
    if coordinates is None:
        return None
    cluster, topic, partition, offset = coordinates
    return f"/events/{quote(cluster, safe='')}/{quote(topic, safe='')}/{partition}/{offset}"


@dataclass
class Bar:
    """One row of the Gantt: a step's forward work or its compensation."""

    kind: str  # forward | compensation
    step: str
    outcome: str  # succeeded | failed | pending | info | compensation | not_seen
    records: list[StepRecord] = field(default_factory=list)
    start_ms: int | None = None
    end_ms: int | None = None
    wait_from_ms: int | None = None
    href: str | None = None
    left: float = 0.0
    width: float = 0.0
    wait_left: float = 0.0
    wait_width: float = 0.0

    @property
    def label(self) -> str:
        return self.step if self.kind == "forward" else f"undo {self.step}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "step": self.step,
            "outcome": self.outcome,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "waited_ms": None
            if self.wait_from_ms is None or self.start_ms is None
            else self.start_ms - self.wait_from_ms,
            "event": self.href,
            "events": [event_link(record.event_key) for record in self.records],
        }


@dataclass
class Timeline:
    bars: list[Bar]
    start_ms: int
    end_ms: int
    ticks: list[tuple[float, float]]  # (percent, seconds since start)
    failure: StepRecord | None


MIN_BAR_PERCENT = 0.6


def _compensation_target(
    record: StepRecord, forward: Mapping[str, Bar], progress: Sequence[StepProgress]
) -> str:
    """The step a compensation undid: its own step name, else the step whose first
    compensation it was (saga_rules attributes unnamed compensations)."""
    if record.step in forward:
        return record.step
    for step in progress:
        if step.compensated_ms == record.timestamp_ms:
            return step.name
    return record.step


def build_timeline(
    state: SagaState, progress: Sequence[StepProgress], now_ms: int, open_ended: bool
) -> Timeline:
    forward: dict[str, Bar] = {
        step.name: Bar("forward", step.name, "not_seen") for step in progress
    }
    records = list(state.steps)
    for record in records:
        if record.outcome is not Outcome.COMPENSATION:
            forward.setdefault(record.step, Bar("forward", record.step, "info")).records.append(
                record
            )
    compensations: dict[str, Bar] = {}
    for record in records:
        if record.outcome is Outcome.COMPENSATION:
            target = _compensation_target(record, forward, progress)
            compensations.setdefault(target, Bar("compensation", target, "compensation"))
            compensations[target].records.append(record)
    by_name = {step.name: step for step in progress}
    failure: StepRecord | None = None
    for bar in forward.values():
        if not bar.records:
            continue
        step = by_name.get(bar.step)
        decisive = bar.records[-1]
        if step is not None and step.failure_stands:
            bar.outcome = "failed"
            decisive = [r for r in bar.records if r.outcome is Outcome.FAILED][-1]
            if failure is None or decisive.timestamp_ms < failure.timestamp_ms:
                failure = decisive
        elif step is not None and step.succeeded_ms is not None:
            bar.outcome = "succeeded"
            decisive = [r for r in bar.records if r.outcome is Outcome.SUCCEEDED][-1]
        elif step is not None and step.started_ms is not None:
            bar.outcome = "pending"
        bar.href = event_link(decisive.event_key)
    for bar in compensations.values():
        bar.href = event_link(bar.records[-1].event_key)

    start = state.first_ms
    end = max(state.last_ms, now_ms) if open_ended else state.last_ms
    span = max(end - start, 1)
    times = sorted(record.timestamp_ms for record in records)

    def percent(moment: int) -> float:
        return min(max((moment - start) * 100.0 / span, 0.0), 100.0)

    bars = list(forward.values()) + sorted(
        compensations.values(), key=lambda bar: bar.records[0].timestamp_ms
    )
    for bar in bars:
        if not bar.records:
            continue
        bar.start_ms = bar.records[0].timestamp_ms
        bar.end_ms = bar.records[-1].timestamp_ms
        if bar.outcome == "pending" and open_ended:
            bar.end_ms = end
        earlier = [moment for moment in times if moment < bar.start_ms]
        if earlier:
            bar.wait_from_ms = earlier[-1]
            bar.wait_left = percent(earlier[-1])
            bar.wait_width = percent(bar.start_ms) - bar.wait_left
        bar.left = min(percent(bar.start_ms), 100.0 - MIN_BAR_PERCENT)
        bar.width = max(percent(bar.end_ms) - bar.left, MIN_BAR_PERCENT)
    ticks = [(quarter * 25.0, span * quarter / 4000) for quarter in range(5)]
    return Timeline(bars, start, end, ticks, failure)


# --------------------------------------------------------------------------- JSON


def saga_links(cluster: str, saga_id: str) -> dict[str, str]:
    path = f"/sagas/{quote(saga_id, safe='')}?{urlencode({'cluster': cluster})}"
    return {"self": "/api" + path, "page": path}


def list_item_json(row: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    return {
        "cluster": row["cluster"],
        "saga_id": row["saga_id"],
        "saga_type": row["saga_type"],
        "status": row["status"],
        "first_ms": row["first_ms"],
        "last_ms": row["last_ms"],
        "first": timestamp_ms(row["first_ms"]),
        "last": timestamp_ms(row["last_ms"]),
        "age_s": max(now_ms - row["first_ms"], 0) / 1000,
        "duration_s": max(row["last_ms"] - row["first_ms"], 0) / 1000,
        "events": row["step_count"],
        "failed": row["failed"],
        "problems": row["problems"],
        "links": saga_links(row["cluster"], row["saga_id"]),
    }


def step_json(step: StepProgress) -> dict[str, Any]:
    return {
        "name": step.name,
        "defined": step.defined,
        "state": step.state,
        "started_ms": step.started_ms,
        "succeeded_ms": step.succeeded_ms,
        "failed_ms": step.failed_ms,
        "compensated_ms": step.compensated_ms,
    }


def record_json(record: StepRecord) -> dict[str, Any]:
    return {
        "event_type": record.event_type,
        "topic": record.topic,
        "timestamp_ms": record.timestamp_ms,
        "timestamp": timestamp_ms(record.timestamp_ms),
        "service": record.service,
        "step": record.step,
        "outcome": str(record.outcome),
        "rule": record.rule,
        "event": event_link(record.event_key),
    }


# --------------------------------------------------------------------------- handlers


async def sagas_page(request: Request) -> Response:
    state = app_state(request)
    api = is_api(request)
    try:
        f = parse_filter(request.query_params)
    except FilterError as exc:
        if api:
            return JSONResponse({"error": str(exc)}, status_code=400)
        context = {"filter": SagaFilter(), "error": str(exc), "result": None, "query": {}}
        return state.templates.TemplateResponse(
            request, "sagas.html", _page_context(context), status_code=400
        )
    now_ms = int(time.time() * 1000)
    result = await run_in_threadpool(list_sagas, state.engine, f, options_of(request), now_ms)
    next_args = f.query_args(offset=f.offset + f.limit) if result.has_more else None
    if api:
        return JSONResponse(
            {
                "sagas": [list_item_json(row, now_ms) for row in result.rows],
                "counts": {"by_type": result.counts, "by_status": result.status_totals},
                "limit": f.limit,
                "offset": f.offset,
                "next": "/api/sagas?" + urlencode(next_args) if next_args else None,
            }
        )
    context = {
        "filter": f,
        "error": None,
        "result": result,
        "now_ms": now_ms,
        "query": request.query_params,
        "next_url": "/sagas?" + urlencode(next_args) if next_args else None,
    }
    template = "_sagas_table.html" if request.headers.get("hx-request") else "sagas.html"
    return state.templates.TemplateResponse(request, template, _page_context(context))


def _page_context(context: dict[str, Any]) -> dict[str, Any]:
    return {
        **context,
        "statuses": STATUSES,
        "sorts": SORTS,
        "badge": STATUS_BADGE,
        "link": lambda row: saga_links(row["cluster"], row["saga_id"])["page"],
    }


async def saga_detail(request: Request) -> Response:
    state = app_state(request)
    saga_id = request.path_params["saga_id"]
    cluster = request.query_params.get("cluster", "").strip()
    if len(saga_id) > 2 * MAX_FILTER_CHARS or len(cluster) > MAX_FILTER_CHARS:
        raise HTTPException(400, "saga id or cluster too long")
    found = await run_in_threadpool(find_sagas, state.engine, saga_id, cluster)
    if not found:
        raise HTTPException(404, f"no saga {saga_id[:200]!r} in the index")
    if len(found) > 1:
        clusters = ", ".join(sorted(row["cluster"] for row in found))
        raise HTTPException(
            400, f"saga {saga_id[:200]!r} exists in clusters {clusters}: add ?cluster="
        )
    row = found[0]
    options = options_of(request)
    saga, ids = await run_in_threadpool(
        load_saga, state.engine, row["cluster"], row["saga_id"], row["state"], options
    )
    now_ms = int(time.time() * 1000)
    status = str(saga.evaluate(now_ms, options.rules, options.stuck_after_s))
    progress = saga.step_progress(options.rules)
    open_ended = status in ("running", "stuck")
    timeline = build_timeline(saga, progress, now_ms, open_ended)
    correlation = ids["correlation_id"]
    reference = correlation or ids["trace_id"]  # what the trace page looks up
    links = {
        **saga_links(row["cluster"], row["saga_id"]),
        "trace": f"/trace/{quote(reference, safe='')}" if reference else None,
        "events": "/events?" + urlencode({"correlation_id": correlation}) if correlation else None,
    }
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
    if is_api(request):
        return JSONResponse(
            {
                **summary,
                "failure": record_json(timeline.failure) if timeline.failure else None,
                "steps": [step_json(step) for step in progress],
                "events": [record_json(record) for record in saga.steps],
                "timeline": [bar.as_json() for bar in timeline.bars],
                "links": links,
            }
        )
    context = {
        "saga": summary,
        "steps": progress,
        "records": saga.steps,
        "timeline": timeline,
        "links": links,
        "badge": STATUS_BADGE,
        "event_link": event_link,
        "now_ms": now_ms,
    }
    return state.templates.TemplateResponse(request, "saga.html", context)


routes = [
    Route("/sagas", sagas_page),
    Route("/api/sagas", sagas_page),
    Route("/sagas/{saga_id:path}", saga_detail),
    Route("/api/sagas/{saga_id:path}", saga_detail),
]
