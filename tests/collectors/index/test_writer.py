"""Group commit: batches added to one open transaction become visible together, and a
failure drops everything since the last commit -- rows, hooks' work and positions."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from collectors.index.writer import (
    BatchWriter,
    RowView,
    columns_getter,
    read_positions,
    write_batch,
)
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


def test_hooks_work_in_the_batch_transaction(index_db) -> None:
    seen: list[int] = []

    def hook(connection: Connection, cluster: str, rows) -> None:
        # The hook sees its own batch's rows through the open transaction.
        topic = rows[0]["topic"]
        found = connection.execute(
            text("SELECT count(*) FROM events WHERE topic = :topic"), {"topic": topic}
        ).scalar_one()
        seen.append(found)
        if any(row["offset"] == 99 for row in rows):
            raise RuntimeError("hook failed")

    writer = BatchWriter(index_db.engine, "local", hooks=[hook])
    try:
        writer.add([event_row("audit", 0)], {("audit", 0): 1}, 1)
        writer.add([event_row("audit", 1)], {("audit", 0): 2}, 1)
        with pytest.raises(RuntimeError, match="hook failed"):
            writer.add([event_row("audit", 99)], {("audit", 0): 100}, 1)
        assert seen == [1, 2, 3]
        assert count(index_db.engine, "audit") == 0
    finally:
        writer.close()
    assert write_batch(index_db.engine, "local", [event_row("audit", 0)], {}, 1) == 1


def test_columns_getter_reads_writer_rows_and_plain_mappings_alike() -> None:
    values = event_row("orders", 7, saga_id="trip-1")
    row = RowView(values)
    get = columns_getter("topic", "offset", "saga_id")
    assert get(row) == get(dict(row)) == ("orders", 7, "trip-1")
    with pytest.raises(ValueError):
        columns_getter("topic")
