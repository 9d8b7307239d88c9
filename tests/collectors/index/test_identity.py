"""Identity look-ups: stable hashes, the right rows, and the hash indexes actually used."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select

from collectors.index.event_row import EVENT_COLUMNS
from collectors.index.event_row import event_row as by_name
from collectors.index.identity import (
    identity_equals,
    identity_in,
    key_equals,
    text_hash,
)
from collectors.index.models import IDENTITY_HASH_COLUMNS, SEGMENT_ROWS, events_table
from collectors.index.writer import write_batch
from tests.collectors.trace_fixtures import event_row


def test_hashes_never_change() -> None:
    """Stored hashes outlive releases: a different function would make old events unfindable."""
    assert text_hash("order-7") == text_hash(b"order-7") == -1606328390169333007
    assert text_hash("0af7651916cd43dd8448eb211c80319c") == -8108589060232497730
    assert text_hash(None) is None
    assert isinstance(text_hash("\ud800 lone surrogate"), int)


def test_look_ups_find_exactly_the_events_with_that_identity(index_db) -> None:
    # As the tap stores them: the saga id is the correlation id unless one was given.
    rows = [
        event_row("orders", 0, cluster="c1", event_id="e0", correlation_id="order-1",
                  saga_id="order-1"),
        event_row("orders", 1, cluster="c1", event_id="e1", correlation_id="order-1",
                  causation_id="e0", saga_id="trip-9"),
        event_row("orders", 2, cluster="c2", event_id="e2", correlation_id="order-1",
                  saga_id="order-1"),
        event_row("orders", 3, cluster="c1", event_id="e3", correlation_id="order-2",
                  saga_id="order-2", trace_id="ab" * 16),
    ]  # fmt: skip
    write_batch(index_db.engine, "c1", rows, {}, 0)

    def offsets(condition) -> list[int]:
        with index_db.engine.connect() as connection:
            query = select(events_table.c.offset).where(condition).order_by("offset")
            return [offset for (offset,) in connection.execute(query)]

    assert offsets(identity_equals("correlation_id", "order-1")) == [0, 1, 2]
    assert offsets(identity_equals("correlation_id", "order-1", "c1")) == [0, 1]
    assert offsets(identity_in("event_id", ["e3", "e0", "nope"])) == [0, 3]
    assert offsets(identity_equals("causation_id", "e0")) == [1]
    assert offsets(identity_equals("trace_id", "ab" * 16)) == [3]
    # A saga is named by its own id, or by the correlation id when it has none.
    assert offsets(identity_equals("saga_id", "trip-9")) == [1]
    assert offsets(identity_equals("saga_id", "order-1", "c1")) == [0]
    assert offsets(identity_in("saga_id", [])) == []


def test_look_ups_probe_every_segment_of_the_index(index_db) -> None:
    """The hash indexes are split by segment of row ids: events far apart are all found,
    also once the oldest are gone (retention)."""
    ids = [3, SEGMENT_ROWS + 1, 5 * SEGMENT_ROWS + 9]
    rows = [
        dict(zip(EVENT_COLUMNS, by_name(**event_row(
            "orders", offset, correlation_id="order-1", saga_id="order-1", key=b"k-1",
            key_hash=text_hash(b"k-1"), trace_id=f"{offset:032x}",
        )), strict=True), id=row_id)
        for offset, row_id in enumerate(ids)
    ]  # fmt: skip
    with index_db.engine.begin() as connection:
        connection.execute(insert(events_table), rows)

    def found(condition) -> list[int]:
        with index_db.engine.connect() as connection:
            query = select(events_table.c.id).where(condition).order_by(events_table.c.id)
            return [row_id for (row_id,) in connection.execute(query)]

    assert found(identity_equals("correlation_id", "order-1")) == ids
    assert found(identity_equals("saga_id", "order-1", "c1")) == ids
    assert found(key_equals(b"k-1")) == ids
    assert found(identity_in("trace_id", [f"{2:032x}", f"{0:032x}"])) == [ids[0], ids[2]]
    with index_db.engine.begin() as connection:
        connection.execute(delete(events_table).where(events_table.c.id == ids[0]))
    assert found(identity_equals("correlation_id", "order-1")) == ids[1:]


@pytest.mark.parametrize("cluster", [None, "c1"])
@pytest.mark.parametrize("name", [*sorted(IDENTITY_HASH_COLUMNS), "key"])
def test_look_ups_use_the_hash_index(tmp_path, name, cluster) -> None:
    """SQLite's planner has no statistics: a look-up, newest first as the search pages
    ask, must neither read a whole cluster nor walk the timestamp index."""
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine

    engine = create_index_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate.upgrade(engine)
    if name == "key":
        condition, index = key_equals(b"x"), "ix_events_key_hash"
    else:
        condition, index = (
            identity_equals(name, "x", cluster),
            f"ix_events_{IDENTITY_HASH_COLUMNS[name]}",
        )
    query = select(events_table.c.offset).where(condition)
    query = query.order_by(events_table.c.timestamp_ms.desc()).limit(50)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
        plan = " | ".join(row[-1] for row in rows)
    engine.dispose()
    assert "ux_events_coordinates" not in plan, plan
    assert "ix_events_timestamp" not in plan, plan
    assert index in plan, plan
