"""PostgreSQL's time partitions of `events` and `spans`: migration, creation ahead,
retention by day."""

import time

import pytest
from sqlalchemy import func, insert, select, text

from collectors import traces
from collectors.index import migrate, partitions
from collectors.index.event_row import event_row
from collectors.index.models import events_table
from collectors.index.retention import RetentionPolicy, run_round
from collectors.index.trace_models import spans_table
from collectors.index.writer import write_batch
from console.stores.events import EventFilter, search_events
from tests.collectors.index.test_migrations import index_at_revision
from tests.collectors.trace_fixtures import BASE_NS, span

DAY = partitions.DAY_MS
NOW_MS = 1_796_000_000_000 // DAY * DAY + DAY // 2  # noon of a day in December 2026


def record(offset: int, timestamp_ms: int, topic: str = "orders") -> tuple:
    return event_row(
        cluster="c", topic=topic, partition=0, offset=offset, timestamp_ms=timestamp_ms,
        indexed_at_ms=NOW_MS, value=b'{"n": 1}', value_size=8, value_truncated=False,
        is_tombstone=False, content_type="json", headers="[]", is_dlq=False,
        event_id=f"evt-{topic}-{offset}", correlation_id=f"order-{offset}",
    )  # fmt: skip


def rows_by_partition(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1")
            ).all()
        )


def count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(events_table)).scalar_one()


# Time partitions are PostgreSQL's (SQLite's retention deletes in chunks).
on_postgresql = pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)


@pytest.fixture
def pg_index(index_db):
    return index_db.engine


@on_postgresql
def test_retention_drops_whole_days_and_look_ups_still_work(pg_index) -> None:
    partitions.ensure_days(pg_index, NOW_MS - 9 * DAY, NOW_MS + DAY)
    days = [NOW_MS - age * DAY for age in range(10)]  # one record a day, 0 to 9 days old
    write_batch(pg_index, "c", [record(i, ts) for i, ts in enumerate(days)], {}, NOW_MS)
    assert set(rows_by_partition(pg_index)) == {partitions.day_name(ts // DAY * DAY) for ts in days}

    policy = RetentionPolicy(max_age_s=3.5 * 86_400, pause_s=0)
    result = run_round(pg_index, policy, now_s=NOW_MS / 1000)

    # The cutoff, 3.5 days before noon, is the start of the day 3 days ago: the days of
    # ages 4 to 9 lay wholly before it and were dropped, partitions and all.
    assert result.partitions == 6
    assert result.events == 6
    assert count(pg_index) == 4
    with pg_index.connect() as connection:
        names = {p.name for p in partitions.list_partitions(connection)}
    assert not any(partitions.day_name(ts // DAY * DAY) in names for ts in days[4:])
    assert partitions.EVENTS.default in names
    # The coming days exist ahead of their records.
    assert partitions.day_name(NOW_MS // DAY * DAY + 2 * DAY) in names
    # Look-ups by id go through every remaining partition's indexes.
    found = search_events(pg_index, EventFilter(correlation_id="order-2")).events
    assert [event["offset"] for event in found] == [2]
    assert search_events(pg_index, EventFilter(event_id="evt-orders-7")).events == []


@on_postgresql
def test_a_record_written_twice_is_kept_once_across_partitions(pg_index) -> None:
    partitions.ensure_days(pg_index, NOW_MS - DAY, NOW_MS + DAY)
    rows = [record(0, NOW_MS - DAY), record(1, NOW_MS)]
    assert write_batch(pg_index, "c", rows, {}, NOW_MS) == 2
    assert write_batch(pg_index, "c", rows, {}, NOW_MS) == 0
    assert count(pg_index) == 2


@on_postgresql
def test_a_day_made_after_its_records_arrived_takes_them_from_the_default_partition(
    pg_index,
) -> None:
    ahead = NOW_MS + 20 * DAY  # a producer's clock three weeks ahead
    write_batch(pg_index, "c", [record(0, ahead), record(1, NOW_MS)], {}, NOW_MS)
    assert rows_by_partition(pg_index) == {partitions.EVENTS.default: 2}

    made = partitions.ensure_days(pg_index, ahead, ahead + 1)

    assert made == [partitions.day_name(ahead // DAY * DAY)]
    assert rows_by_partition(pg_index) == {made[0]: 1, partitions.EVENTS.default: 1}
    found = search_events(pg_index, EventFilter(correlation_id="order-0")).events
    assert [event["timestamp_ms"] for event in found] == [ahead]
    assert partitions.ensure_days(pg_index, ahead, ahead + 1) == []  # already there


def test_upgrading_an_unpartitioned_index_keeps_every_row(tmp_path, request) -> None:
    """0014: the events of an index made before partitioning all stay, by id and identity,
    and the index goes on taking records (and refusing a record twice)."""
    with index_at_revision("postgresql", "0013", tmp_path, request) as engine:
        now_ms = int(time.time() * 1000) // DAY * DAY  # today, 00:00 UTC
        stamps = [now_ms - 3 * DAY, now_ms - DAY, now_ms, now_ms + 30 * DAY]  # the last: ahead
        with engine.begin() as connection:  # as that release wrote them
            rows = [record(i, ts)._asdict() for i, ts in enumerate(stamps)]
            connection.execute(insert(events_table), rows)
        with engine.connect() as connection:
            before = connection.execute(text("SELECT id, event_id FROM events ORDER BY id")).all()

        migrate.upgrade(engine)

        with engine.connect() as connection:
            after = connection.execute(text("SELECT id, event_id FROM events ORDER BY id")).all()
            assert partitions.is_partitioned(connection)
        assert after == before
        assert rows_by_partition(engine) == {
            partitions.EVENTS.unpartitioned: 3,
            partitions.EVENTS.default: 1,  # stamped beyond the days that may exist
        }
        found = search_events(engine, EventFilter(correlation_id="order-1")).events
        assert [event["event_id"] for event in found] == ["evt-orders-1"]
        # New records get new ids, and a record the old table held is not taken again.
        assert write_batch(engine, "c", [record(1, stamps[1]), record(9, now_ms)], {}, now_ms) == 1
        with engine.connect() as connection:
            newest = connection.execute(text("SELECT max(id) FROM events")).scalar_one()
        assert newest > before[-1][0]
        # The old table holds the days to the one after its newest record's (but no further
        # than two days ahead); the day partitions follow it.
        run_round(engine, RetentionPolicy(max_age_s=None), now_s=(now_ms + DAY // 2) / 1000)
        with engine.connect() as connection:
            names = [p.name for p in partitions.list_partitions(connection)]
        assert names == [
            partitions.EVENTS.unpartitioned,
            partitions.day_name(now_ms + 3 * DAY),
            partitions.EVENTS.default,
        ]


def span_ids(engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(text("SELECT span_id FROM spans")).scalars())


def link_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM span_links")).scalar_one()


@on_postgresql
def test_retention_drops_days_of_spans_with_their_links(pg_index) -> None:
    partitions.ensure_days(pg_index, NOW_MS - 9 * DAY, NOW_MS + DAY, partitions.SPANS)
    ages = range(10)  # a batch consumer's span a day, 0 to 9 days old, linking its producer
    records = [
        span(f"{age:032x}", f"{age:016x}", start_ms=NOW_MS - age * DAY - BASE_NS // 1_000_000,
             links=[(f"{age + 100:032x}", f"{age + 100:016x}")])
        for age in ages
    ]  # fmt: skip
    assert traces.store_spans(pg_index, records, NOW_MS) == 10
    assert link_count(pg_index) == 10

    result = run_round(pg_index, RetentionPolicy(max_age_s=3.5 * 86_400, pause_s=0),
                       now_s=NOW_MS / 1000)  # fmt: skip

    assert result.spans == 6
    assert span_ids(pg_index) == [f"{age:016x}" for age in range(4)]
    assert link_count(pg_index) == 4  # the links of the dropped days' spans went with them
    with pg_index.connect() as connection:
        names = {p.name for p in partitions.list_partitions(connection, partitions.SPANS)}
    assert partitions.day_name(NOW_MS - 5 * DAY, partitions.SPANS) not in names
    assert partitions.day_name(NOW_MS, partitions.SPANS) in names
    # A span stored again is still stored once.
    assert traces.store_spans(pg_index, records[:2], NOW_MS) == 0
    with pg_index.connect() as connection:
        assert len(traces.spans_of_traces(connection, [f"{1:032x}"], 10)) == 1


def test_upgrading_unpartitioned_spans_keeps_every_span(tmp_path, request) -> None:
    """0015: the spans of an index made before partitioning all stay, and new ones come."""
    with index_at_revision("postgresql", "0014", tmp_path, request) as engine:
        now_ms = int(time.time() * 1000) // DAY * DAY
        base_ms = BASE_NS // 1_000_000
        old = [span(f"{i:032x}", f"{i:016x}", start_ms=now_ms - i * DAY - base_ms)
               for i in range(3)]  # fmt: skip
        with engine.begin() as connection:  # as that release wrote them
            rows = [traces.span_row(record, now_ms) for record in old]
            connection.execute(insert(spans_table), rows)
        before = span_ids(engine)

        migrate.upgrade(engine)

        with engine.connect() as connection:
            assert partitions.is_partitioned(connection, partitions.SPANS)
        assert span_ids(engine) == before
        assert traces.store_spans(engine, [*old, span("f" * 32, "f" * 16)], now_ms) == 1
        assert len(span_ids(engine)) == 4
