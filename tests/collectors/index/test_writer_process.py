"""The writer process: batches commit with their positions, failures are reported and
lose only what was not committed, a dead child is reported then replaced, and the child
never outlives its pipe."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collectors.index.event_row import COLUMN_INDEX, EVENT_COLUMNS
from collectors.index.event_row import event_row as by_name
from collectors.index.models import events_table
from collectors.index.writer import read_positions
from collectors.index.writer_process import WriterProcess, WriterProcessError


def event_row(topic: str, offset: int, **values: object) -> tuple:
    row = {name: None for name in EVENT_COLUMNS}
    row.update(
        cluster="local",
        topic=topic,
        partition=0,
        offset=offset,
        timestamp_ms=1_700_000_000_000 + offset,
        indexed_at_ms=1_700_000_000_000,
        value=b'{"n": %d}' % offset,
        value_size=9,
        value_truncated=False,
        is_tombstone=False,
        content_type="json",
        headers="[]",
        is_dlq=False,
        event_id=f"evt-{offset}",
    )
    row.update(values)
    return by_name(**row)


def count(engine, topic: str) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(events_table).where(events_table.c.topic == topic)
        return connection.execute(query).scalar_one()


def test_batches_commit_with_positions_and_duplicates_are_dropped(index_db) -> None:
    writer = WriterProcess(index_db.url, "local")
    try:
        rows = [event_row("orders", offset) for offset in range(100)]
        assert writer.add(rows[:60], {("orders", 0): 60}, 1) == 0
        assert writer.add(rows[60:], {("orders", 0): 100}, 1) == 0
        assert count(index_db.engine, "orders") == 0  # added, not yet committed
        assert writer.commit() == 100
        # The same batch again (its answer was lost, say): nothing is indexed twice.
        writer.add(rows, {("orders", 0): 100}, 2)
        assert writer.commit() == 0
        assert count(index_db.engine, "orders") == 100
        assert read_positions(index_db.engine, "local", [("orders", 0)]) == {("orders", 0): 100}
    finally:
        writer.close()


def test_a_failed_batch_is_reported_and_commits_nothing(index_db) -> None:
    writer = WriterProcess(index_db.url, "local")
    try:
        good = [event_row("payments", 0)]
        bad = [event_row("payments", 1, timestamp_ms="not a number")]
        if index_db.backend == "sqlite":  # SQLite stores any type: break a NOT NULL instead
            bad = [event_row("payments", 1, cluster=None)]
        writer.add(good, {("payments", 0): 1}, 1)
        writer.add(bad, {("payments", 0): 2}, 1)  # sent; its answer is read with the next
        with pytest.raises(WriterProcessError):
            writer.add(good, {("payments", 0): 1}, 1)  # refused: it would follow a lost batch
        # The failure took the earlier, uncommitted batch with it: the tap reads it again.
        assert writer.commit() == 0
        assert count(index_db.engine, "payments") == 0
        assert read_positions(index_db.engine, "local", [("payments", 0)]) == {}
        # The same writer goes on with the next good batch.
        writer.add(good, {("payments", 0): 1}, 2)
        assert writer.commit() == 1
    finally:
        writer.close()


class FlushLog:
    """A hook for the child: appends the offsets of each flush to a file, one line per
    flush; a flush holding offset 99 fails."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.collected: list[int] = []

    def collect(self, cluster: str, rows) -> None:
        self.collected += [row[COLUMN_INDEX["offset"]] for row in rows]

    def flush(self, connection, cluster: str) -> None:
        collected, self.collected = self.collected, []
        if 99 in collected:
            raise RuntimeError("hook failed")
        if collected:
            with open(self.path, "a") as log:
                log.write(" ".join(map(str, collected)) + "\n")

    def discard(self) -> None:
        self.collected = []


def flushes(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_an_idle_child_does_the_hooks_work_before_the_commit(index_db, tmp_path) -> None:
    if index_db.backend != "sqlite":
        pytest.skip("on PostgreSQL the hooks flush at the commit (the saga lock waits for it)")
    log = tmp_path / "flushes.log"
    writer = WriterProcess(index_db.url, "local", hooks=[FlushLog(log)])
    try:
        writer.add([event_row("audit", 0), event_row("audit", 1)], {("audit", 0): 2}, 1)
        deadline = time.monotonic() + 30
        while not flushes(log) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert flushes(log) == ["0 1"]  # done while waiting for the next request
        assert count(index_db.engine, "audit") == 0  # in the open transaction only
        writer.add([event_row("audit", 2)], {("audit", 0): 3}, 1)
        assert writer.commit() == 3
        assert flushes(log) == ["0 1", "2"]

        # A failure while idle is the answer to the next request; nothing of it commits.
        writer.add([event_row("audit", 99)], {("audit", 0): 100}, 1)
        with pytest.raises(WriterProcessError, match="hook failed"):
            writer.commit()
        assert read_positions(index_db.engine, "local", [("audit", 0)]) == {("audit", 0): 3}
        writer.add([event_row("audit", 3)], {("audit", 0): 4}, 2)
        assert writer.commit() == 1
    finally:
        writer.close()


def test_a_killed_child_is_replaced_on_the_next_write(tmp_path) -> None:
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    url = f"sqlite:///{tmp_path / 'index.db'}"
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    writer = WriterProcess(url, "local")
    try:
        writer.add([event_row("shipping", 0)], {("shipping", 0): 1}, 1)
        writer.commit()
        writer.add([event_row("shipping", 1)], {("shipping", 0): 2}, 1)  # never committed
        first_pid = writer.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        # The death is reported (the tap reads the lost batch again), then a new child serves.
        with pytest.raises(WriterProcessError, match="not committed is lost"):
            writer.add([event_row("shipping", 2)], {("shipping", 0): 3}, 2)
        assert count(engine, "shipping") == 1
        writer.add([event_row("shipping", 1), event_row("shipping", 2)], {("shipping", 0): 3}, 3)
        assert writer.commit() == 2
        assert writer.pid not in (None, first_pid)
        assert count(engine, "shipping") == 3
    finally:
        writer.close()
        engine.dispose()


def test_the_child_exits_when_the_writer_closes(tmp_path) -> None:
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    url = f"sqlite:///{tmp_path / 'index.db'}"
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    writer = WriterProcess(url, "local")
    writer.add([event_row("stock", 0)], {("stock", 0): 1}, 1)
    pid = writer.pid
    assert pid is not None
    writer.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
