"""The saga follower: sagas derived from committed events, after the tap's commit.

Why not inside the tap's transaction: deriving there cost ~11 us of CPU per record on the
ingest path, and on PostgreSQL a cluster-wide saga lock made collectors commit in turns.
Sagas now trail ingest a little; the saga pages say how far (`follower_lag`).

How: a durable cursor (the `saga_cursor` row): every events row with an id up to
`last_id` has been derived. Each pass is one transaction: claim the cursor row (an UPDATE,
so a second follower, in another collector process, waits for this one; on SQLite the pass
holds the write lock from its start), read the next rows with a saga id after the cursor in
id order (at most `batch_rows`, none past the settled horizon below), derive their sagas
(collectors/sagas.derive_sagas) and move the cursor. The sagas and the cursor commit
together: a kill -9 anywhere leaves both or neither, so no event is lost or derived twice
(and deriving one twice would change nothing anyway: a saga keys its steps by the event).

Ids that commit out of order (PostgreSQL): a row draws its id from a sequence when it is
inserted but becomes visible when its transaction commits, so one tap's uncommitted id 100
may sit below another tap's visible 101; a cursor moved past 101 would skip 100 for good.
So `CommitHorizon` lets the follower read only up to a settled id. It notes the newest
visible id H, then the transactions holding a write lock on `events` (pg_locks: a writer
takes RowExclusiveLock before it draws an id and keeps it until it ends). Every id up to H
was drawn before H committed, hence by one of those transactions or by one already over;
once none of them is running any more (checked at the next passes), every id up to H is
final: committed, or never to be (rolled back, or burnt by ON CONFLICT DO NOTHING: gaps the
cursor passes). A writer that declared, when it began, that it only draws ids above H
(collectors/index/writer.ID_FLOOR_KEY) is not waited for: without that, every horizon would
wait for the tap transaction that opened right after the commit that made H visible. SQLite
has one writer at a time, so its ids commit in order and every visible row is settled.

On which index: PostgreSQL. On SQLite the tap's writer still derives the sagas inline
(`derives_after_commit`): SQLite has one writer, so there is no cluster-wide lock to escape,
and a follower's passes would take that one write lock from the tap in turns; measured,
ingest on SQLite was 12% slower with the follower (docs/benchmarks.md).

Where it runs: in a process of its own (`python -m collectors.saga_follower`, started and
watched by the `SagaFollower` service, restarted when it dies), for the reason the index
writer has one (collectors/index/writer_process.py): derivation is CPU work, and in the
collector's process it would share the GIL with the consumer and the normaliser. The child
exits when its pipe closes, including when its parent is killed. An in-memory SQLite index
cannot be shared, so there the service runs the passes itself, as it does with
`in_process=True` (tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe

from sqlalchemy import Connection, Engine, func, select, update

from collectors.index.engine import is_sqlite
from collectors.index.models import events_table
from collectors.index.saga_models import saga_cursor_table
from collectors.index.writer import ID_FLOOR_KEY
from collectors.saga_state import SagaEventRef
from collectors.sagas import SagaOptions, derive_sagas, saga_event
from collectors.services import PeriodicService

log = logging.getLogger("eventscope.sagas")

CURSOR = "sagas"
BATCH_ROWS = 5_000  # events rows with a saga id per pass (one transaction)
IDLE_S = 0.1  # between passes once caught up
FAR_BEHIND_S = 60.0  # past this the pipeline banner and /readyz say so
WATCH_S = 1.0  # how often the service looks at its child and the lag
MAX_BACKOFF_S = 60.0

_EVENT_COLUMNS = (
    events_table.c.id,
    events_table.c.cluster,
    events_table.c.saga_id,
    events_table.c.topic,
    events_table.c.partition,
    events_table.c.offset,
    events_table.c.event_type,
    events_table.c.timestamp_ms,
    events_table.c.source,
)


def derives_after_commit(engine: Engine) -> bool:
    """Whether the follower derives the sagas (PostgreSQL) or the tap's hook does, inline
    with the events it writes (SQLite)."""
    return not is_sqlite(engine)


@dataclass(frozen=True)
class FollowerLag:
    """How far the sagas trail the index: `behind_s` is the age (by indexed_at_ms) of the
    oldest indexed event not derived yet, 0 when every event is; `cursor` the last id."""

    behind_s: float
    cursor: int
    pending: bool  # some indexed event is not derived yet


def follower_lag(connection: Connection, now_ms: int) -> FollowerLag:
    """The follower's lag as the index tells it (two look-ups by primary key)."""
    cursor = connection.execute(
        select(saga_cursor_table.c.last_id).where(saga_cursor_table.c.name == CURSOR)
    ).scalar()
    last_id = int(cursor or 0)
    oldest = connection.execute(
        select(events_table.c.indexed_at_ms)
        .where(events_table.c.id > last_id)
        .order_by(events_table.c.id)
        .limit(1)
    ).scalar()
    if oldest is None:
        return FollowerLag(0.0, last_id, False)
    return FollowerLag(max(now_ms - int(oldest), 0) / 1000, last_id, True)


class CommitHorizon:
    """On PostgreSQL, the highest events id below which no row can still commit (see the
    module's docstring); on SQLite None, meaning every visible row."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settled = 0
        self._pending: tuple[int, list[str]] | None = None  # (H, writers running then)

    def current(self) -> int | None:
        if is_sqlite(self.engine):
            return None
        with self.engine.connect() as connection:
            if self._pending is not None:
                newest, writers = self._pending
                if not _any_running(connection, writers):
                    self.settled, self._pending = max(self.settled, newest), None
            if self._pending is None:
                # In this order: the newest visible id first, then who may hold ids below it.
                newest = connection.execute(select(func.max(events_table.c.id))).scalar() or 0
                writers = _events_writers(connection, int(newest))
                if writers:
                    self._pending = (int(newest), writers)
                else:
                    self.settled = max(self.settled, int(newest))
            connection.rollback()
        return self.settled


def _events_writers(connection: Connection, newest: int) -> list[str]:
    """The virtual transaction ids of the other transactions holding (or awaiting) a write
    lock on `events`, but those that declared they draw only ids above `newest`."""
    rows = connection.exec_driver_sql(
        "WITH here AS (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "SELECT w.virtualtransaction, max((f.classid::bigint << 32) | f.objid::bigint) "
        "FROM pg_locks w LEFT JOIN pg_locks f ON f.virtualtransaction = w.virtualtransaction "
        "AND f.locktype = 'advisory' AND f.objsubid = 1 AND f.mode = 'ShareLock' "
        "AND f.database = (SELECT oid FROM here) AND f.classid >= %s "
        "WHERE w.locktype = 'relation' AND w.relation = 'events'::regclass "
        "AND w.database = (SELECT oid FROM here) "
        "AND w.mode = 'RowExclusiveLock' AND w.pid IS DISTINCT FROM pg_backend_pid() "
        "GROUP BY w.virtualtransaction",
        (ID_FLOOR_KEY >> 32,),
    ).all()
    return [vxid for vxid, key in rows if vxid and (key is None or key - ID_FLOOR_KEY < newest)]


def _any_running(connection: Connection, writers: list[str]) -> bool:
    """Whether any of these transactions is still running (each holds its own vxid lock)."""
    row = connection.exec_driver_sql(
        "SELECT 1 FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY(%s) LIMIT 1",
        (writers,),
    ).first()
    return row is not None


def follow_in(
    connection: Connection,
    options: SagaOptions,
    horizon: int | None,
    now_ms: int,
    batch_rows: int = BATCH_ROWS,
) -> tuple[int, int]:
    """One pass inside the caller's open transaction: derive the next events after the
    cursor (up to `horizon`, None: every visible row) and move the cursor; return (events
    derived, cursor). The caller commits; a rollback undoes the sagas and the cursor."""
    table = saga_cursor_table
    claimed = connection.execute(
        update(table).where(table.c.name == CURSOR).values(updated_at_ms=now_ms)
    )
    if claimed.rowcount == 0:  # an index migrated without its row (never, but cheap to mend)
        connection.execute(table.insert().values(name=CURSOR, last_id=0, updated_at_ms=now_ms))
    cursor = int(connection.execute(select(table.c.last_id).where(table.c.name == CURSOR)).one()[0])
    if horizon is None:  # SQLite: this pass holds the write lock, no row can appear meanwhile
        horizon = int(connection.execute(select(func.max(events_table.c.id))).scalar() or 0)
    if horizon <= cursor:
        return 0, cursor
    c = events_table.c
    rows = connection.execute(
        select(*_EVENT_COLUMNS)
        .where(c.id > cursor, c.id <= horizon, c.saga_id.is_not(None))
        .order_by(c.id)
        .limit(batch_rows)
    ).all()
    by_cluster: dict[str, dict[str, list[SagaEventRef]]] = {}
    for _id, cluster, saga_id, *ref_columns in rows:
        if not saga_id:
            continue
        key, ref = saga_event(cluster, saga_id, *ref_columns)
        by_cluster.setdefault(cluster, {}).setdefault(key, []).append(ref)
    for cluster in sorted(by_cluster):  # one lock order for every follower
        derive_sagas(connection, cluster, by_cluster[cluster], options, now_ms)
    moved = rows[-1][0] if len(rows) == batch_rows else horizon
    connection.execute(update(table).where(table.c.name == CURSOR).values(last_id=moved))
    return len(rows), moved


class SagaFollower(PeriodicService):
    """Background service: keeps the `sagas` table in step with the committed events, from
    a child process (see the module's docstring) or, `in_process`, by itself."""

    name = "saga-follower"

    def __init__(
        self,
        engine: Engine,
        options: SagaOptions,
        batch_rows: int = BATCH_ROWS,
        idle_s: float = IDLE_S,
        clock: Callable[[], float] = time.time,
        in_process: bool = False,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.options = options
        self.batch_rows = batch_rows
        self.idle_s = idle_s
        self.clock = clock
        url = engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        self.in_process = in_process or in_memory
        self.horizon = CommitHorizon(engine)
        self.derived = 0  # events derived since start (in this process)
        self.lag: FollowerLag | None = None  # after the last pass or look
        self._child: FollowerProcess | None = None

    async def stop(self) -> None:
        await super().stop()
        if self._child is not None:
            await asyncio.to_thread(self._child.stop)
            self._child = None

    def watch(self) -> None:
        """Start the child, or start it again if it died (saying so); read the lag."""
        if self._child is None:
            url = self.engine.url.render_as_string(hide_password=False)
            self._child = FollowerProcess(url, self.options, self.batch_rows, self.idle_s)
        exited = self._child.ensure_running()
        with self.engine.connect() as connection:
            self.lag = follower_lag(connection, int(time.time() * 1000))
        if exited is not None:
            raise RuntimeError(f"the saga follower process exited ({exited}); started again")

    def follow_once(self) -> int:
        """One pass (a transaction); return how many events it derived."""
        horizon = self.horizon.current()
        with self.engine.begin() as connection:
            derived, _cursor = follow_in(
                connection, self.options, horizon, int(self.clock() * 1000), self.batch_rows
            )
        self.derived += derived
        with self.engine.connect() as connection:
            self.lag = follower_lag(connection, int(time.time() * 1000))
        return derived

    async def step(self) -> float:
        if not self.in_process:
            await asyncio.to_thread(self.watch)
            return WATCH_S
        derived = await asyncio.to_thread(self.follow_once)
        return 0.0 if derived >= self.batch_rows else self.idle_s

    def pipeline_problem(self, now: float) -> str | None:
        """Sagas far behind the index (collectors/services.ServiceGroup.problems)."""
        health = self.health
        last_ms = health.last_success_ms
        if health.last_error and (last_ms is None or now - last_ms / 1000 >= FAR_BEHIND_S):
            return f"the saga follower is failing: {health.last_error}"
        lag = self.lag
        if lag is None or lag.behind_s < FAR_BEHIND_S:
            return None
        return f"sagas are {lag.behind_s:.0f} s behind the index (the saga follower is catching up)"


class FollowerProcess:
    """The follower's child process: started with its settings over a pipe, stopped by
    closing the pipe (the child exits when it reads end-of-file)."""

    def __init__(self, url: str, options: SagaOptions, batch_rows: int, idle_s: float) -> None:
        self.settings = (url, options, batch_rows, idle_s)
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: Pipe | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def ensure_running(self) -> int | None:
        """Start the child if none runs; return the exit code of one that had died."""
        exited = None
        if self._process is not None and self._process.poll() is not None:
            exited = self._process.returncode
            self._close()
        if self._process is None:
            process = subprocess.Popen(
                [sys.executable, "-m", "collectors.saga_follower"],
                stdin=subprocess.PIPE,
                close_fds=True,
            )
            assert process.stdin is not None
            pipe = Pipe(os.dup(process.stdin.fileno()), readable=False)
            process.stdin.close()
            self._process, self._pipe = process, pipe
            pipe.send(self.settings)
        return exited

    def stop(self, timeout_s: float = 10.0) -> None:
        process = self._process
        self._close()
        if process is None:
            return
        try:
            process.wait(timeout_s)  # it ends its pass, then sees the pipe closed
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
        self._pipe, self._process = None, None


def _follow_until_closed(pipe: Pipe) -> None:
    """The child's loop: passes one after another until the parent closes the pipe."""
    from collectors.index.engine import create_index_engine

    url, options, batch_rows, idle_s = pipe.recv()
    engine = create_index_engine(url)
    follower = SagaFollower(engine, options, batch_rows, idle_s, in_process=True)
    backoff = 0.0
    try:
        while True:
            try:
                derived = follower.follow_once()
                backoff, wait = 0.0, (0.0 if derived >= batch_rows else idle_s)
            except Exception as exc:  # the index is away: log, back off, try again
                backoff = min(max(backoff * 2, 1.0), MAX_BACKOFF_S)
                log.warning("saga follower pass failed (next in %.0f s): %s", backoff, exc)
                wait = backoff
            if pipe.poll(wait):
                try:
                    pipe.recv()
                except EOFError:
                    return
    finally:
        engine.dispose()


def main() -> None:
    """Entry point of the child (`python -m collectors.saga_follower`). Signals to the
    process group are left to the parent, which stops the child by closing the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    _follow_until_closed(Pipe(0, writable=False))


if __name__ == "__main__":
    main()
