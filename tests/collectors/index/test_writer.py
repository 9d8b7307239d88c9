"""Group commit: batches added to one open transaction become visible together, and a
failure drops everything since the last commit -- rows, hooks' work and positions."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from collectors.index.event_row import COLUMN_INDEX
from collectors.index.writer import BatchWriter, columns_getter, read_positions
from tests.collectors.index.test_writer_process import count, event_row


def test_batches_commit_together_when_asked_or_when_the_transaction_is_full(index_db) -> None:
    writer = BatchWriter(index_db.engine, "local", commit_rows=5)
    try:
        first = [event_row("orders", 0), event_row("orders", 1)]
        assert writer.add(first, {("orders", 0): 2}, 1) == 0
        assert writer.pending_rows == 2
        assert count(index_db.engine, "orders") == 0
        assert read_positions(index_db.engine, "local", [("orders", 0)]) == {}
        assert writer.commit() == 2
        assert count(index_db.engine, "orders") == 2
        # Three adds of two rows: the third reaches commit_rows and commits all six.
        rows = [event_row("orders", offset) for offset in range(2, 8)]
        assert writer.add(rows[0:2], {("orders", 0): 4}, 2) == 0
        assert writer.add(rows[2:4], {("orders", 0): 6}, 2) == 0
        assert writer.add(rows[4:6], {("orders", 0): 8}, 2) == 6
        assert writer.pending_rows == 0
        assert count(index_db.engine, "orders") == 8
        assert read_positions(index_db.engine, "local", [("orders", 0)]) == {("orders", 0): 8}
        assert writer.commit() == 0  # nothing open
    finally:
        writer.close()


def test_a_failure_drops_every_batch_since_the_last_commit(index_db) -> None:
    writer = BatchWriter(index_db.engine, "local")
    try:
        writer.add([event_row("stock", 0)], {("stock", 0): 1}, 1)
        writer.commit()
        writer.add([event_row("stock", 1)], {("stock", 0): 2}, 1)
        with pytest.raises(IntegrityError):  # NOT NULL
            writer.add([event_row("stock", 2, cluster=None)], {("stock", 0): 3}, 1)
        assert writer.pending_rows == 0
        assert writer.commit() == 0
        assert count(index_db.engine, "stock") == 1
        assert read_positions(index_db.engine, "local", [("stock", 0)]) == {("stock", 0): 1}
        # The writer is usable again: the batches are simply added again.
        writer.add([event_row("stock", 1), event_row("stock", 2)], {("stock", 0): 3}, 2)
        assert writer.commit() == 2
    finally:
        writer.close()


class CountingHook:
    """Collects the offsets of every batch; at commit counts its topic's rows in the index."""

    def __init__(self) -> None:
        self.collected: list[int] = []
        self.seen: list[int] = []
        self.discarded = 0

    def collect(self, cluster: str, rows) -> None:
        assert cluster == "local"
        self.collected += [row[COLUMN_INDEX["offset"]] for row in rows]

    def flush(self, connection: Connection, cluster: str) -> None:
        assert cluster == "local"
        # The hook sees the rows of every batch of the commit through the open transaction.
        found = connection.execute(
            text("SELECT count(*) FROM events WHERE topic = 'audit'")
        ).scalar_one()
        self.seen.append(found)
        if 99 in self.collected:
            raise RuntimeError("hook failed")
        self.collected = []

    def discard(self) -> None:
        self.discarded += 1
        self.collected = []


def test_hooks_collect_every_batch_and_flush_once_in_the_commit(index_db) -> None:
    hook = CountingHook()
    writer = BatchWriter(index_db.engine, "local", hooks=[hook])
    try:
        writer.add([event_row("audit", 0)], {("audit", 0): 1}, 1)
        writer.add([event_row("audit", 1), event_row("audit", 2)], {("audit", 0): 3}, 1)
        assert hook.collected == [0, 1, 2] and hook.seen == []
        assert writer.commit() == 3
        assert hook.seen == [3]

        writer.add([event_row("audit", 99)], {("audit", 0): 100}, 1)
        with pytest.raises(RuntimeError, match="hook failed"):
            writer.commit()
        # The failed flush rolled back its transaction: the row and its position are gone.
        assert hook.seen == [3, 4] and hook.discarded == 1 and hook.collected == []
        assert count(index_db.engine, "audit") == 3
        assert read_positions(index_db.engine, "local", [("audit", 0)]) == {("audit", 0): 3}
    finally:
        writer.close()


def test_prepare_does_the_hooks_work_ahead_inside_the_open_transaction(index_db) -> None:
    hook = CountingHook()
    writer = BatchWriter(index_db.engine, "local", hooks=[hook])
    try:
        writer.add([event_row("audit", 0), event_row("audit", 1)], {("audit", 0): 2}, 1)
        writer.prepare()
        assert hook.seen == [2] and hook.collected == []
        assert count(index_db.engine, "audit") == 0  # prepared, not committed
        writer.add([event_row("audit", 2)], {("audit", 0): 3}, 1)
        assert writer.commit() == 3
        assert hook.seen == [2, 3] and count(index_db.engine, "audit") == 3

        writer.add([event_row("audit", 99)], {("audit", 0): 100}, 1)
        with pytest.raises(RuntimeError, match="hook failed"):
            writer.prepare()
        # A failed prepare rolls the transaction back as a failed commit does.
        assert hook.discarded == 1 and writer.pending_rows == 0
        assert writer.commit() == 0
        assert read_positions(index_db.engine, "local", [("audit", 0)]) == {("audit", 0): 3}
        writer.prepare()  # nothing open: nothing to do
    finally:
        writer.close()


def test_columns_getter_reads_event_tuples() -> None:
    values = event_row("orders", 7, saga_id="trip-1")
    get = columns_getter("topic", "offset", "saga_id")
    assert get(values) == ("orders", 7, "trip-1")
    with pytest.raises(ValueError):
        columns_getter("topic")


@pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)
def test_two_writers_of_the_same_records_index_them_once(index_db) -> None:
    """PostgreSQL copies rows that are not in the index yet straight into `events`. Two
    collectors owning a partition for a moment may write the same records at once: the
    second waits for the first, fails when it commits, and finds them indexed when it
    writes them again (as the tap does, from the stored positions)."""
    first = BatchWriter(index_db.engine, "local")
    second = BatchWriter(index_db.engine, "local")
    rows = [event_row("race", offset) for offset in range(3)]
    try:
        first.add(rows, {("race", 0): 3}, 1)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(second.add, rows, {("race", 0): 3}, 1)
            time.sleep(0.5)
            assert not waiting.done()  # held by the first writer's rows
            assert first.commit() == 3
            with pytest.raises(IntegrityError):
                waiting.result(timeout=30)
        assert second.pending_rows == 0
        second.add([*rows, event_row("race", 3)], {("race", 0): 4}, 2)
        assert second.commit() == 1
        assert count(index_db.engine, "race") == 4
        assert read_positions(index_db.engine, "local", [("race", 0)]) == {("race", 0): 4}
    finally:
        first.close()
        second.close()
