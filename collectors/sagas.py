"""Saga instances kept up to date in the index from the indexed events.

- `saga_options` reads the `[sagas]` configuration table: the classification rules and saga
  definitions of collectors/saga_rules.py plus two settings of its own, `stuck_after_s` (when
  a saga without a timeout of its own counts as stuck) and `evaluate_interval_s`.
- `derive_sagas` is the one derivation: given new events grouped by saga id, it loads those
  sagas' states in one query, applies the events and upserts the sagas in one executemany.
  Applying an event a saga already holds changes nothing (SagaState keys its steps by the
  event's coordinates), so deriving an event twice is harmless.
- Who calls it: the saga follower (collectors/saga_follower.py) for committed events in
  row-id order, off the tap's write path; and `SagaHook`, a batch hook
  (collectors/index/writer.py) that the re-decode pass uses for rows that gain a saga id
  when they are decoded after the follower has passed them.
- `SagaEvaluator` is a background service: statuses that change with the clock alone (stuck,
  compensation incomplete, completed after a quiet period) are re-evaluated every
  `evaluate_interval_s` for the sagas that could have changed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, select, tuple_, update

from collectors.index.engine import one_of
from collectors.index.event_row import EventTuple
from collectors.index.identity import identity_equals, text_hash
from collectors.index.models import events_table
from collectors.index.saga_models import sagas_table
from collectors.index.writer import columns_getter
from collectors.saga_config import saga_rules_from_mapping
from collectors.saga_rules import (
    DEFAULT_STUCK_AFTER_S,
    MAX_KEY_CHARS,
    MAX_RECORDS,
    Outcome,
    SagaRules,
    SagaStatus,
)
from collectors.saga_state import SagaEventRef, SagaState, new_state
from collectors.services import PeriodicService

log = logging.getLogger("eventscope.sagas")

DEFAULT_EVALUATE_INTERVAL_S = 30.0
LOAD_CHUNK = 500  # saga ids per IN (...) look-up
EVALUATE_PAGE = 500
MAX_BACKOFF_S = 300.0

# Statuses the clock alone can change; the others change only when an event arrives.
TIME_DEPENDENT = (SagaStatus.RUNNING, SagaStatus.FAILED, SagaStatus.COMPENSATING)
_OWN_KEYS = ("stuck_after_s", "evaluate_interval_s")
_RULE_KEYS = ("use_defaults", "outcomes", "topics", "definitions")  # SagaRules.from_mapping


@dataclass(frozen=True)
class SagaOptions:
    rules: SagaRules = field(default_factory=SagaRules)
    stuck_after_s: float = DEFAULT_STUCK_AFTER_S
    evaluate_interval_s: float = DEFAULT_EVALUATE_INTERVAL_S

    def shortest_limit_s(self) -> float:
        """The shortest time after which any saga can change status by the clock alone."""
        limits = [self.stuck_after_s]
        for definition in self.rules.definitions:
            limits.append(definition.timeout_s or math.inf)
            limits += [step.timeout_s or math.inf for step in definition.steps]
        return min(limits)


def saga_options(data: Mapping[str, Any]) -> SagaOptions:
    """Options from the `[sagas]` table; a bad value raises ValueError naming its key."""
    if not isinstance(data, Mapping):
        raise ValueError("expected a table")
    for key in data:
        if key not in _RULE_KEYS and key not in _OWN_KEYS:
            known = ", ".join(sorted((*_RULE_KEYS, *_OWN_KEYS)))
            raise ValueError(f"{str(key)[:80]}: unknown key (expected one of {known})")
    rest = {key: value for key, value in data.items() if key not in _OWN_KEYS}
    values: dict[str, float] = {}
    for key in _OWN_KEYS:
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key}: expected a number of seconds")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{key}: expected a positive number of seconds")
        values[key] = float(value)
    return SagaOptions(rules=saga_rules_from_mapping(rest), **values)


def event_key(cluster: str, topic: str, partition: int, offset: int) -> str:
    """How a saga's history names an event: its coordinates (Kafka topics have no '/')."""
    return f"{cluster}/{topic}/{partition}/{offset}"


def parse_event_key(key: str) -> tuple[str, str, int, int] | None:
    """The coordinates in an `event_key`, or None for keys that are not coordinates."""
    parts = key.split("/")
    if len(parts) != 4 or not parts[0] or not parts[1]:
        return None
    try:
        partition, offset = int(parts[2]), int(parts[3])
    except ValueError:
        return None
    return parts[0], parts[1], partition, offset


# What the hook reads of every row, in one call (collectors/index/writer.columns_getter):
# the saga id, then _ref's arguments.
_REF_COLUMNS = columns_getter(
    "saga_id", "topic", "partition", "offset", "event_type", "timestamp_ms", "source"
)


def _ref(
    cluster: str,
    topic: str,
    partition: int,
    offset: int,
    event_type: str | None,
    timestamp_ms: int,
    source: str | None,
) -> SagaEventRef:
    return SagaEventRef(
        event_key(cluster, topic, partition, offset),
        event_type or topic,
        topic,
        timestamp_ms,
        source,
    )


# The columns of a `sagas` row in the order the upsert binds them; on conflict every one
# but the key is replaced and the version moves on.
SAGA_COLUMNS = (
    "cluster",
    "saga_id",
    "saga_type",
    "status",
    "first_ms",
    "last_ms",
    "step_count",
    "failed",
    "problem_count",
    "problems",
    "state",
    "version",
    "updated_at_ms",
)


def _upsert_sql(dialect: str) -> str:
    """The driver-level upsert (per-row SQLAlchemy compilation costs more than the insert)."""
    marker = "%s" if dialect == "postgresql" else "?"
    replaced = [c for c in SAGA_COLUMNS if c not in ("cluster", "saga_id", "version")]
    return (
        f"INSERT INTO sagas ({', '.join(SAGA_COLUMNS)}) "
        f"VALUES ({', '.join(marker for _ in SAGA_COLUMNS)}) "
        "ON CONFLICT (cluster, saga_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in replaced)
        + ", version = sagas.version + 1"
    )


def saga_row(cluster: str, state: SagaState, now_ms: int) -> dict[str, Any]:
    """The `sagas` row of a state (version 1; an update adds one to the stored version)."""
    return {
        "cluster": cluster,
        "saga_id": state.saga_id,
        "saga_type": state.saga_type,
        "status": str(state.status),
        "first_ms": state.first_ms,
        "last_ms": state.last_ms,
        "step_count": len(state.steps),
        "failed": any(record.outcome is Outcome.FAILED for record in state.steps),
        "problem_count": len(state.problems),
        "problems": orjson.dumps(state.problems).decode() if state.problems else "[]",
        "state": orjson.dumps(state.to_json()).decode(),
        "version": 1,
        "updated_at_ms": now_ms,
    }


def rebuild_state(
    connection: Connection, cluster: str, saga_id: str, options: SagaOptions
) -> SagaState:
    """A saga's state read again from its indexed events (when the stored one is unusable)."""
    columns = events_table.c
    query = (
        select(
            columns.topic,
            columns.partition,
            columns.offset,
            columns.event_type,
            columns.timestamp_ms,
            columns.source,
        )
        .where(identity_equals("saga_id", saga_id, cluster))
        .order_by(columns.timestamp_ms)
        .limit(MAX_RECORDS)
    )
    state = new_state(saga_id)
    for row in connection.execute(query):
        state.apply(_ref(cluster, *row), options.rules)
    return state


def load_states(
    connection: Connection, cluster: str, saga_ids: Iterable[str], options: SagaOptions
) -> dict[str, SagaState]:
    """The stored states of these sagas (absent when new), in one query per chunk."""
    ids = list(saga_ids)
    states: dict[str, SagaState] = {}
    for start in range(0, len(ids), LOAD_CHUNK):
        chunk = ids[start : start + LOAD_CHUNK]
        query = select(sagas_table.c.saga_id, sagas_table.c.state).where(
            sagas_table.c.cluster == cluster,
            one_of(sagas_table.c.saga_id, chunk, connection.dialect.name),
        )
        for saga_id, document in connection.execute(query):
            try:
                states[saga_id] = SagaState.from_json(document)
            except ValueError as exc:
                log.warning("saga %r: stored state unusable (%s); rebuilding", saga_id, exc)
                states[saga_id] = rebuild_state(connection, cluster, saga_id, options)
    return states


def derive_sagas(
    connection: Connection,
    cluster: str,
    grouped: Mapping[str, Sequence[SagaEventRef]],
    options: SagaOptions,
    now_ms: int,
) -> int:
    """Apply new events (saga id -> its events) to the stored sagas of a cluster inside the
    open transaction; return how many sagas were written."""
    if not grouped:
        return 0
    lock_sagas(connection, cluster)
    rules = options.rules
    states = load_states(connection, cluster, grouped, options)
    changed = []
    for saga_id, refs in grouped.items():
        state = states.get(saga_id) or new_state(saga_id)
        state.apply_all(refs, rules, assess=False)  # evaluate() assesses next
        state.evaluate(now_ms, rules, options.stuck_after_s)
        changed.append(saga_row(cluster, state, now_ms))
    upsert_sagas(connection, changed)
    return len(changed)


def saga_event(cluster: str, saga_id: str, *ref_columns: Any) -> tuple[str, SagaEventRef]:
    """The (saga id, event) an events row gives `derive_sagas`, from its saga id and its
    topic, partition, offset, event type, timestamp and source."""
    return saga_id[:MAX_KEY_CHARS], _ref(cluster, *ref_columns)


class SagaHook:
    """A batch hook (collectors/index/writer.BatchHook) deriving the sagas of the rows it
    sees when its writer flushes: the re-decode pass's, for rows that were written before
    their saga id could be read."""

    def __init__(self, options: SagaOptions, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.clock = clock
        self._pending: dict[str, list[SagaEventRef]] = {}  # saga id -> its new events

    def collect(self, cluster: str, rows: Sequence[EventTuple]) -> None:
        pending = self._pending
        for row in rows:
            columns = _REF_COLUMNS(row)
            saga_id = columns[0]
            if saga_id:
                pending.setdefault(saga_id[:MAX_KEY_CHARS], []).append(_ref(cluster, *columns[1:]))

    def flush(self, connection: Connection, cluster: str) -> None:
        grouped, self._pending = self._pending, {}
        derive_sagas(connection, cluster, grouped, self.options, int(self.clock() * 1000))

    def discard(self) -> None:
        self._pending = {}


def lock_sagas(connection: Connection, cluster: str) -> None:
    """On PostgreSQL, wait for the cluster's saga lock, held until the transaction ends.

    Why: the follower and the re-decode pass (of every collector process) may derive events
    of one saga at the same moment. Each reads the stored state, adds its events and writes
    the state back; without the lock the second write drops the first one's events. One
    lock rather than one per saga: a pass touches thousands of sagas, and PostgreSQL's lock
    table holds a few thousand locks in all. SQLite has one writer at a time. The taps never
    take it: they do not derive sagas.
    """
    if connection.dialect.name == "postgresql":
        key = text_hash(f"eventscope sagas\x00{cluster}")
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (key,))


def upsert_sagas(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    tuples = [tuple(row[name] for name in SAGA_COLUMNS) for row in rows]
    connection.exec_driver_sql(_upsert_sql(connection.dialect.name), tuples)


def evaluate_due(engine: Engine, options: SagaOptions, now_ms: int) -> int:
    """Re-evaluate the sagas the clock may have changed; return how many changed.

    Only sagas in a time-dependent status whose first event is older than the shortest
    limit are read (every limit runs from an event at or after the first one). A saga
    derived meanwhile (its version moved) is left alone: the derivation evaluated it too.
    """
    limit_ms = options.shortest_limit_s() * 1000
    if not math.isfinite(limit_ms):
        return 0
    columns = sagas_table.c
    due = and_(
        columns.status.in_([str(status) for status in TIME_DEPENDENT]),
        columns.first_ms < now_ms - int(limit_ms),
    )
    changed = 0
    after: tuple[str, str] | None = None
    while True:
        query = (
            select(columns.cluster, columns.saga_id, columns.state, columns.version)
            .where(due)
            .order_by(columns.cluster, columns.saga_id)
            .limit(EVALUATE_PAGE)
        )
        if after is not None:
            query = query.where(tuple_(columns.cluster, columns.saga_id) > after)
        with engine.connect() as connection:
            page = connection.execute(query).all()
        if not page:
            return changed
        updates = []
        for cluster, saga_id, document, version in page:
            try:
                state = SagaState.from_json(document)
            except ValueError:
                continue  # the next event for this saga rebuilds it
            before = (state.status, list(state.problems))
            state.evaluate(now_ms, options.rules, options.stuck_after_s)
            if (state.status, state.problems) != before:
                updates.append((cluster, saga_id, version, saga_row(cluster, state, now_ms)))
        if updates:
            with engine.begin() as connection:
                for cluster, saga_id, version, row in updates:
                    result = connection.execute(
                        update(sagas_table)
                        .where(
                            columns.cluster == cluster,
                            columns.saga_id == saga_id,
                            columns.version == version,
                        )
                        .values(
                            status=row["status"],
                            problems=row["problems"],
                            problem_count=row["problem_count"],
                            state=row["state"],
                            updated_at_ms=now_ms,
                        )
                    )
                    changed += max(result.rowcount, 0)
        last = page[-1]
        after = (last[0], last[1])
        if len(page) < EVALUATE_PAGE:
            return changed


class SagaEvaluator(PeriodicService):
    """Background service: re-evaluates time-dependent saga statuses periodically."""

    name = "saga-evaluator"

    def __init__(
        self, engine: Engine, options: SagaOptions, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self.engine = engine
        self.options = options
        self.clock = clock
        self.passes = 0
        self.last_changed = 0
        self.first_delay_s = self.retry_s = options.evaluate_interval_s
        self.max_backoff_s = MAX_BACKOFF_S

    async def step(self) -> float:
        now_ms = int(self.clock() * 1000)
        self.last_changed = await asyncio.to_thread(evaluate_due, self.engine, self.options, now_ms)
        self.passes += 1
        return self.options.evaluate_interval_s
