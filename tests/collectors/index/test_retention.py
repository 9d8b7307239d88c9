from sqlalchemy import func, select

from collectors.index.models import events_table
from collectors.index.retention import RetentionPolicy, index_size_bytes, run_once
from collectors.index.writer import write_batch


def add_events(engine, count: int, start_ms: int, size: int = 200) -> None:
    rows = [
        {
            "cluster": "c", "topic": "t", "partition": 0, "offset": start_ms + i,
            "timestamp_ms": start_ms + i, "indexed_at_ms": 0, "key": None, "key_hash": None,
            "value": b"v" * size, "value_size": size, "value_truncated": False,
            "is_tombstone": False, "content_type": "text", "schema_id": None, "headers": "[]",
            "event_id": None, "event_type": None, "source": None, "correlation_id": None,
            "causation_id": None, "trace_id": None, "span_id": None, "saga_id": None,
            "is_dlq": False, "dlq_original_topic": None, "dlq_original_partition": None,
            "dlq_original_offset": None, "dlq_error_class": None, "dlq_error_message": None,
            "dlq_stacktrace": None, "dlq_attempts": None, "dlq_format": None,
        }
        for i in range(count)
    ]  # fmt: skip
    write_batch(engine, "c", rows, {}, 0)


def timestamps(engine) -> list[int]:
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(select(events_table.c.timestamp_ms))]


def test_age_retention_deletes_only_old_events_in_chunks(index_db) -> None:
    add_events(index_db.engine, 25, start_ms=1_000)  # old
    add_events(index_db.engine, 5, start_ms=10_000_000)  # recent
    policy = RetentionPolicy(max_age_s=100, chunk_rows=7, pause_s=0)
    deleted = run_once(index_db.engine, policy, now_s=10_000 + 50)
    assert deleted == 25
    assert sorted(timestamps(index_db.engine)) == list(range(10_000_000, 10_000_005))


def test_size_retention_deletes_oldest_first_until_under_the_cap(index_db) -> None:
    add_events(index_db.engine, 3_000, start_ms=0, size=2_000)
    full = index_size_bytes(index_db.engine)
    policy = RetentionPolicy(max_age_s=None, max_bytes=full // 2, chunk_rows=500, pause_s=0)
    deleted = run_once(index_db.engine, policy)
    assert 0 < deleted < 3_000
    assert index_size_bytes(index_db.engine) <= full // 2
    remaining = sorted(timestamps(index_db.engine))
    assert remaining == list(range(deleted, 3_000))  # the oldest went first
    with index_db.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(events_table)).scalar() == len(
            remaining
        )
