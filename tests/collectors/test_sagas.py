"""Saga derivation (by the follower and the re-decode pass's hook) and the re-evaluation,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from collectors.index.event_row import EVENT_COLUMNS
from collectors.index.saga_models import saga_cursor_table, sagas_table
from collectors.index.writer import BatchWriter, write_batch
from collectors.saga_follower import BATCH_ROWS, SagaFollower, follow_in, follower_lag
from collectors.saga_state import new_state
from collectors.sagas import (
    LOAD_CHUNK,
    SagaHook,
    SagaOptions,
    evaluate_due,
    event_key,
    load_states,
    parse_event_key,
    saga_options,
    saga_row,
    upsert_sagas,
)

T0 = 1_700_000_000_000
TRIP = {
    "name": "trip",
    "topics": ["trip-*"],
    "timeout_s": 60,
    "steps": [{"name": "flight"}, {"name": "hotel"}, {"name": "payment"}],
}


def event_row(topic: str, offset: int, event_type: str, ts: int, saga_id: str | None) -> dict:
    row = dict.fromkeys(EVENT_COLUMNS)
    row.update(
        cluster="local",
        topic=topic,
        partition=0,
        offset=offset,
        timestamp_ms=ts,
        indexed_at_ms=ts,
        value_size=0,
        value_truncated=False,
        is_tombstone=False,
        content_type="json",
        headers="[]",
        event_type=event_type,
        source="svc",
        saga_id=saga_id,
        is_dlq=False,
    )
    return row


def trip_rows(saga_id: str, types: list[str], start_offset: int = 0) -> list[dict]:
    rows = []
    for index, event_type in enumerate(types):
        topic = "trip-commands" if not event_type.endswith(("ed", "Failed")) else "trip-replies"
        offset = start_offset + index
        rows.append(event_row(topic, offset, event_type, T0 + offset * 1000, saga_id))
    return rows


def write(engine, rows: list[dict], options: SagaOptions, now_ms: int) -> None:
    """Index the rows as a tap does (no saga work), then let the follower catch up."""
    write_batch(engine, "local", rows, {}, T0)
    follow(engine, options, now_ms)


def follow(engine, options: SagaOptions, now_ms: int, batch_rows: int = BATCH_ROWS) -> int:
    """Passes of a fresh follower until every indexed event is derived; events derived."""
    follower = SagaFollower(engine, options, batch_rows=batch_rows, clock=clock_at(now_ms))
    derived = 0
    for _ in range(1000):
        derived += follower.follow_once()
        if follower.lag is not None and not follower.lag.pending:
            return derived
    raise AssertionError("the follower never caught up")


def sagas(engine) -> dict[str, dict]:
    with engine.connect() as connection:
        return {
            row["saga_id"]: dict(row) for row in connection.execute(select(sagas_table)).mappings()
        }


def clock_at(ms: int):
    return lambda: ms / 1000


def test_event_keys_round_trip() -> None:
    key = event_key("local", "trip.replies", 3, 42)
    assert parse_event_key(key) == ("local", "trip.replies", 3, 42)
    assert parse_event_key("no-coordinates") is None
    assert parse_event_key("a/b/c/d") is None


def test_follower_materializes_sagas_incrementally_across_commits(index_db) -> None:
    options = saga_options({})
    first = trip_rows("trip-1", ["ReserveFlight", "FlightReserved", "ReserveHotel"])
    first.append(event_row("noise", 0, "Heartbeat", T0, None))  # no saga id: ignored
    write(index_db.engine, first, options, T0 + 10_000)
    stored = sagas(index_db.engine)
    assert list(stored) == ["trip-1"]
    assert stored["trip-1"]["status"] == "running"
    assert stored["trip-1"]["step_count"] == 3 and stored["trip-1"]["version"] == 1

    rest = trip_rows(
        "trip-1",
        ["HotelReserved", "ChargePayment", "PaymentFailed", "CancelHotel", "HotelCancelled"],
        start_offset=3,
    )
    rest += trip_rows("trip-1", ["CancelFlight", "FlightCancelled"], start_offset=8)
    write(index_db.engine, rest, options, T0 + 10_000)
    write(index_db.engine, rest[:2], options, T0 + 10_000)  # written twice: changes nothing
    saga = sagas(index_db.engine)["trip-1"]
    assert saga["status"] == "compensated"
    assert saga["failed"] is True or saga["failed"] == 1
    assert saga["step_count"] == 10
    assert (saga["first_ms"], saga["last_ms"]) == (T0, T0 + 9000)
    state = json.loads(saga["state"])
    assert state["steps"][0]["key"] == "local/trip-commands/0/0"
    assert [s["outcome"] for s in state["steps"]][-2:] == ["compensation", "compensation"]


def test_hook_derives_a_saga_once_per_commit_whatever_the_batches(index_db) -> None:
    """The hook the re-decode pass uses for rows that gain a saga id after the follower
    passed them."""
    hook = SagaHook(saga_options({}), clock=clock_at(T0 + 10_000))
    rows = trip_rows("trip-9", ["ReserveFlight", "FlightReserved", "ReserveHotel", "HotelReserved"])
    writer = BatchWriter(index_db.engine, "local", hooks=[hook])
    try:
        for row in rows:  # one batch per event, as when they come from different partitions
            writer.add([row], {}, T0)
        assert sagas(index_db.engine) == {}  # nothing derived before the commit
        writer.commit()
        saga = sagas(index_db.engine)["trip-9"]
        assert saga["step_count"] == 4 and saga["version"] == 1

        writer.add(trip_rows("trip-9", ["ChargePayment"], start_offset=4), {}, T0)
        writer.rollback()  # what the rolled-back batch implied is forgotten with it
        writer.add(trip_rows("trip-9", ["ChargePayment"], start_offset=5), {}, T0)
        writer.commit()
        saga = sagas(index_db.engine)["trip-9"]
        assert saga["step_count"] == 5 and saga["version"] == 2
        keys = [step["key"] for step in json.loads(saga["state"])["steps"]]
        assert "local/trip-commands/0/4" not in keys and "local/trip-commands/0/5" in keys
    finally:
        writer.close()


def test_definition_detects_order_and_missing_compensation(index_db) -> None:
    options = saga_options({"definitions": [TRIP]})
    rows = trip_rows(
        "trip-2",
        ["ReserveHotel", "HotelReserved", "ReserveFlight", "FlightReserved", "ChargePayment"],
    )
    rows += trip_rows("trip-2", ["PaymentFailed", "CancelHotel", "HotelCancelled"], 5)
    write(index_db.engine, rows, options, T0 + 10_000)
    saga = sagas(index_db.engine)["trip-2"]
    assert saga["saga_type"] == "trip" and saga["status"] == "compensating"
    assert "step hotel before flight" in json.loads(saga["problems"])

    # Past the saga's timeout, the missing compensation is a problem of its own.
    assert evaluate_due(index_db.engine, options, T0 + 30_000) == 0
    assert evaluate_due(index_db.engine, options, T0 + 61_000) == 1
    saga = sagas(index_db.engine)["trip-2"]
    assert saga["status"] == "compensation_incomplete"
    assert "compensation missing for step flight" in json.loads(saga["problems"])
    assert saga["problem_count"] == len(json.loads(saga["problems"]))


def test_evaluation_marks_stuck_sagas_but_never_overwrites_a_newer_state(index_db) -> None:
    options = saga_options({"definitions": [TRIP]})
    write(
        index_db.engine,
        trip_rows("trip-3", ["ReserveFlight", "FlightReserved"]),
        options,
        T0 + 2000,
    )
    write(index_db.engine, trip_rows("trip-4", ["ReserveFlight"], start_offset=10), options,
          T0 + 2000)  # fmt: skip
    assert {s["status"] for s in sagas(index_db.engine).values()} == {"running"}
    assert evaluate_due(index_db.engine, options, T0 + 120_000) == 2
    assert {s["status"] for s in sagas(index_db.engine).values()} == {"stuck"}
    assert "saga timed out" in sagas(index_db.engine)["trip-3"]["problems"]

    # A newer event reopens the saga; the follower evaluates it with its own clock.
    write(index_db.engine, trip_rows("trip-3", ["ReserveHotel"], start_offset=2), options,
          T0 + 3000)  # fmt: skip
    assert sagas(index_db.engine)["trip-3"]["status"] == "running"


def test_unusable_stored_state_is_rebuilt_from_the_events(index_db) -> None:
    options = saga_options({})
    write(index_db.engine, trip_rows("trip-5", ["ReserveFlight", "FlightReserved"]), options,
          T0 + 5000)  # fmt: skip
    with index_db.engine.begin() as connection:
        connection.execute(update(sagas_table).values(state='{"format": 99}'))
    write(index_db.engine, trip_rows("trip-5", ["ReserveHotel"], start_offset=2), options,
          T0 + 5000)  # fmt: skip
    saga = sagas(index_db.engine)["trip-5"]
    assert saga["step_count"] == 3 and saga["status"] == "running"


@pytest.mark.parametrize(
    "config,key",
    [({"stuck_after_s": -1}, "stuck_after_s"), ({"x": 1}, "x"), ({"use_defaults": 1}, "use")],
)
def test_bad_options_name_the_key(config: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        saga_options(config)


# PostgreSQL only: SQLite has one writer at a time.
@pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)
def test_two_writers_deriving_one_saga_at_once_both_keep_their_events(index_db) -> None:
    """Two writers deriving sagas (the re-decode passes of two collectors, or one and the
    follower) may write one saga at the same moment; each reads the stored state, adds its
    events and writes it back: the saga lock makes them take turns."""
    first_hook = SagaHook(saga_options({}), clock=clock_at(T0 + 10_000))
    second_hook = SagaHook(saga_options({}), clock=clock_at(T0 + 10_000))
    first = BatchWriter(index_db.engine, "local", hooks=[first_hook], commit_rows=None)
    second = BatchWriter(index_db.engine, "local", hooks=[second_hook], commit_rows=None)
    first_rows = trip_rows("trip-7", ["ReserveFlight", "FlightReserved"])
    second_rows = trip_rows("trip-7", ["ReserveHotel", "HotelReserved"], start_offset=2)
    for row in second_rows:
        row["partition"] = 1  # another collector's partition
    first.add(first_rows, {}, T0)
    second.add(second_rows, {}, T0)
    first_connection = first._connection
    assert first_connection is not None
    first_hook.flush(first_connection, "local")  # the first collector is committing...

    errors: list[BaseException] = []

    def commit_second() -> None:
        try:
            second.commit()
        except BaseException as exc:
            errors.append(exc)

    racing = threading.Thread(target=commit_second)
    racing.start()  # ...when the second one commits too
    try:
        deadline = time.monotonic() + 10
        while not waiting_for_a_lock(index_db.engine):
            assert time.monotonic() < deadline, "the second commit did not wait for the first"
            time.sleep(0.01)
    finally:
        first.commit()  # its hook has nothing left to flush
        racing.join(10)
    assert errors == []
    saga = sagas(index_db.engine)["trip-7"]
    assert saga["step_count"] == 4
    keys = {step["key"] for step in json.loads(saga["state"])["steps"]}
    assert keys == {
        "local/trip-commands/0/0", "local/trip-replies/0/1",
        "local/trip-commands/1/2", "local/trip-replies/1/3",
    }  # fmt: skip


def waiting_for_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
        )


def test_saga_states_are_read_through_the_key_even_under_a_generic_plan(index_db) -> None:
    """PostgreSQL may plan a statement psycopg has prepared once for all its parameters.
    On a table not analysed yet (a fresh index catching up on a backlog), loading a
    commit's saga states must still be a key look-up, not a read of every saga of the
    cluster: ingest slowed as sagas accrued. 5,000 sagas are enough to tell them apart."""
    if index_db.backend != "postgresql":
        pytest.skip("generic plans are PostgreSQL's")
    options = saga_options({})
    known = [f"order-{n}" for n in range(5000)]
    with index_db.engine.begin() as connection:
        upsert_sagas(connection, [saga_row("local", new_state(s), T0) for s in known])
    with index_db.engine.connect() as connection:
        connection.connection.driver_connection.prepare_threshold = 0
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        states = load_states(connection, "local", [*known[:3], "order-unknown"], options)
        assert sorted(states) == known[:3]
        load_states(connection, "local", known[:LOAD_CHUNK], options)  # a full chunk
        plans = []
        prepared = connection.exec_driver_sql(
            "SELECT name, parameter_types::text[] FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT sagas.saga_id, sagas.state%%'"
        ).all()
        assert prepared
        for name, types in prepared:
            arguments = ", ".join("'{x}'" if kind.endswith("[]") else "'x'" for kind in types)
            lines = connection.exec_driver_sql(f"EXPLAIN EXECUTE {name}({arguments})")
            plans.append("\n".join(line for (line,) in lines))
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        assert any("Index Cond" in line and "saga_id" in line for line in plan.splitlines()), plan


# --------------------------------------------------------------------------- the follower


def cursor_of(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(saga_cursor_table.c.last_id)).scalar_one()


def one_event_sagas(count: int, start: int = 0) -> list[dict]:
    """`count` sagas of one event each: a saga derived twice would have version 2."""
    return [
        event_row("trip-commands", n, "ReserveFlight", T0 + n, f"solo-{n}")
        for n in range(start, start + count)
    ]


def test_follower_reads_in_bounded_batches_and_says_how_far_behind_it_is(index_db) -> None:
    options = saga_options({})
    write_batch(index_db.engine, "local", one_event_sagas(25), {}, T0)
    follower = SagaFollower(index_db.engine, options, batch_rows=10, clock=clock_at(T0))
    assert follower.follow_once() == 10
    assert follower.lag is not None and follower.lag.pending and follower.lag.cursor == 10
    assert follower.follow_once() == 10 and follower.follow_once() == 5
    assert follower.lag.cursor == 25 and not follower.lag.pending
    assert follower.lag.behind_s == 0 and follower.pipeline_problem(time.time()) is None
    assert follower.follow_once() == 0  # nothing new: the cursor stays
    with index_db.engine.connect() as connection:
        assert follower_lag(connection, T0).cursor == 25
    stored = sagas(index_db.engine)
    assert len(stored) == 25 and {saga["version"] for saga in stored.values()} == {1}


def test_an_abandoned_pass_is_done_again_and_nothing_is_derived_twice(index_db) -> None:
    """A pass killed before its commit (the transaction abandoned) leaves neither sagas nor
    a cursor; the next follower derives every event exactly once."""
    options = saga_options({})
    write_batch(index_db.engine, "local", one_event_sagas(30), {}, T0)
    assert follow(index_db.engine, options, T0, batch_rows=10) == 30
    write_batch(index_db.engine, "local", one_event_sagas(30, start=30), {}, T0)
    horizon = SagaFollower(index_db.engine, options).horizon.current()
    connection = index_db.engine.connect()
    connection.begin()
    assert follow_in(connection, options, horizon, T0, batch_rows=20) == (20, 50)
    connection.invalidate()  # the process dies: no commit, no rollback, the socket drops
    connection.close()
    assert cursor_of(index_db.engine) == 30
    assert follow(index_db.engine, options, T0, batch_rows=7) == 30
    stored = sagas(index_db.engine)
    assert len(stored) == 60 and {saga["version"] for saga in stored.values()} == {1}
    assert cursor_of(index_db.engine) == 60


KILLED_FOLLOWER = """
import sys, time
from collectors.index.engine import create_index_engine
from collectors.saga_follower import SagaFollower
from collectors.sagas import saga_options
follower = SagaFollower(create_index_engine(sys.argv[1]), saga_options({}), batch_rows=25)
while True:
    follower.follow_once()
    time.sleep(0.01)
"""


def test_a_follower_killed_with_sigkill_catches_up_without_deriving_twice(index_db) -> None:
    options = saga_options({})
    write_batch(index_db.engine, "local", one_event_sagas(2000), {}, T0)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_FOLLOWER, index_db.url],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        deadline = time.monotonic() + 60
        while cursor_of(index_db.engine) < 200:
            assert child.poll() is None and time.monotonic() < deadline, "the follower stopped"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert cursor_of(index_db.engine) < 2000, "killed too late to tell"
    follow(index_db.engine, options, T0)
    stored = sagas(index_db.engine)
    assert len(stored) == 2000 and {saga["version"] for saga in stored.values()} == {1}


@pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)
def test_an_id_committed_after_a_higher_one_is_not_skipped(index_db) -> None:
    """PostgreSQL: a writer draws id 1 and commits after another writer's id 2 is visible.
    The follower must not move its cursor past 2 while 1 may still come."""
    options = saga_options({})
    slow = BatchWriter(index_db.engine, "local", commit_rows=None)
    fast = BatchWriter(index_db.engine, "local", commit_rows=None)
    try:
        slow.add([event_row("trip-commands", 0, "ReserveFlight", T0, "slow-saga")], {}, T0)
        fast.add([event_row("trip-commands", 1, "ReserveFlight", T0, "fast-saga")], {}, T0)
        fast.commit()
        follower = SagaFollower(index_db.engine, options, clock=clock_at(T0))
        for _ in range(3):
            assert follower.follow_once() == 0  # the fast one waits for the slow one
        assert sagas(index_db.engine) == {} and cursor_of(index_db.engine) == 0
        assert follower.lag is not None and follower.lag.pending
        slow.commit()
        for _ in range(3):
            follower.follow_once()
    finally:
        slow.close()
        fast.close()
    assert set(sagas(index_db.engine)) == {"slow-saga", "fast-saga"}
    assert cursor_of(index_db.engine) == 2


@pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)
def test_two_followers_at_once_derive_each_event_once(index_db) -> None:
    """Every collector process runs a follower; the cursor row makes them take turns."""
    options = saga_options({})
    write_batch(index_db.engine, "local", one_event_sagas(500), {}, T0)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            follow(index_db.engine, options, T0, batch_rows=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    stored = sagas(index_db.engine)
    assert len(stored) == 500 and {saga["version"] for saga in stored.values()} == {1}


def test_a_follower_far_behind_says_so_in_the_pipeline_problems(index_db) -> None:
    now = time.time()
    rows = one_event_sagas(3)
    for row in rows:
        row["indexed_at_ms"] = int((now - 120) * 1000)  # indexed two minutes ago
    write_batch(index_db.engine, "local", rows, {}, T0)
    follower = SagaFollower(index_db.engine, saga_options({}), batch_rows=1)
    follower.follow_once()
    assert follower.lag is not None and follower.lag.behind_s >= 119
    assert "sagas are 1" in (follower.pipeline_problem(now) or "")
    follow(index_db.engine, saga_options({}), T0)
    follower.follow_once()
    assert follower.pipeline_problem(now) is None


async def test_the_service_follows_from_a_child_process_and_restarts_it(index_db) -> None:
    """The service runs the passes in a child process; one killed is started again and
    catches up without deriving anything twice."""
    write_batch(index_db.engine, "local", one_event_sagas(50), {}, T0)
    service = SagaFollower(index_db.engine, saga_options({}), batch_rows=10)
    assert not service.in_process
    await service.start()
    try:
        await wait_for(lambda: cursor_of(index_db.engine) == 50, "the first events derived")
        child = service._child
        assert child is not None and child.pid is not None
        killed = child.pid
        os.kill(killed, signal.SIGKILL)
        write_batch(index_db.engine, "local", one_event_sagas(50, start=50), {}, T0)
        await wait_for(lambda: cursor_of(index_db.engine) == 100, "the child started again")
        assert child.pid != killed and service.lag is not None
        assert service.health.errors == 1  # the restart is reported
    finally:
        await service.stop()
    stored = sagas(index_db.engine)
    assert len(stored) == 100 and {saga["version"] for saga in stored.values()} == {1}


async def wait_for(condition, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)
def test_a_writer_that_began_after_a_commit_does_not_hold_its_rows_back(index_db) -> None:
    """PostgreSQL: a tap opens its next transaction right after a commit. It declared that
    it draws only higher ids, so the committed rows are derived without waiting for it."""
    with index_db.engine.connect() as connection:
        sequence = connection.exec_driver_sql("SELECT pg_get_serial_sequence('events', 'id')")
        assert sequence.scalar() == "public.events_id_seq"  # the writer's declaration reads it
    options = saga_options({})
    write_batch(index_db.engine, "local", one_event_sagas(3), {}, T0)
    follower = SagaFollower(index_db.engine, options, clock=clock_at(T0))
    next_one = BatchWriter(index_db.engine, "local", commit_rows=None)
    try:
        next_one.add(one_event_sagas(1, start=3), {}, T0)  # open, uncommitted: id 4
        follower.follow_once()
        assert cursor_of(index_db.engine) == 3 and len(sagas(index_db.engine)) == 3
        next_one.commit()
    finally:
        next_one.close()
    for _ in range(2):
        follower.follow_once()
    assert cursor_of(index_db.engine) == 4
