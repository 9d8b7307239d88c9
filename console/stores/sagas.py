"""The sagas' store: saga instances with counts by type and status, one saga's state
with the ids that link it to its trace (collectors/sagas.py writes the table), and how far
the sagas trail the index (collectors/saga_follower.py derives them after ingest).

Statuses that depend on the clock are evaluated again at read time, so an answer is never
older than the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select

from collectors.index.identity import identity_equals
from collectors.index.models import events_table
from collectors.index.saga_models import sagas_table
from collectors.saga_follower import FollowerLag, derives_after_commit, follower_lag
from collectors.saga_rules import Outcome, SagaStatus
from collectors.saga_state import SagaState
from collectors.sagas import TIME_DEPENDENT, SagaOptions, rebuild_state

STATUSES = tuple(str(status) for status in SagaStatus)
DEFAULT_LIMIT = 100
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
            # The state is read where the row alone cannot say: a time-dependent status, or
            # which step failed.
            case((c.status.in_(time_dependent) | c.failed, c.state), else_=None).label("state"),
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
    failed_step = None
    if row["state"] is not None:
        try:
            state = SagaState.from_json(row["state"])
        except ValueError:
            pass
        else:
            if status in TIME_DEPENDENT:
                status = str(state.evaluate(now_ms, options.rules, options.stuck_after_s))
                problems = list(state.problems)
            failed_step = next(
                (r.step or r.event_type for r in state.steps if r.outcome is Outcome.FAILED), None
            )
    return {
        "cluster": row["cluster"],
        "saga_id": row["saga_id"],
        "saga_type": row["saga_type"],
        "status": status,
        "first_ms": row["first_ms"],
        "last_ms": row["last_ms"],
        "step_count": row["step_count"],
        "failed": bool(row["failed"]),
        "failed_step": failed_step,
        "problems": problems,
    }


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


# A saga in one of these states is over: sending one of its records again re-runs a step
# after the end (a cancelled order charged and shipped). Stuck and running sagas are not.
SAGA_OVER = ("completed", "failed", "compensating", "compensated", "compensation_incomplete")


def saga_status(engine: Engine, cluster: str, saga_id: str) -> tuple[str, int] | None:
    """(status, time of its last event) of one saga; None when the index has no such saga."""
    c = sagas_table.c
    query = select(c.status, c.last_ms).where(c.cluster == cluster, c.saga_id == saga_id)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return (row.status, row.last_ms) if row else None


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


def saga_freshness(engine: Engine, now_ms: int) -> FollowerLag:
    """How far behind the index the sagas are (the follower's cursor against the events);
    never behind where the tap derives them inline (SQLite)."""
    if not derives_after_commit(engine):
        return FollowerLag(0.0, 0, False)
    with engine.connect() as connection:
        return follower_lag(connection, now_ms)
