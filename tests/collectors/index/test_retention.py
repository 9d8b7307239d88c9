from sqlalchemy import func, insert, select

from collectors import traces
from collectors.index.models import events_table
from collectors.index.retention import RetentionPolicy, index_size_bytes, run_once, run_round
from collectors.index.saga_models import sagas_table
from collectors.index.trace_models import span_links_table, spans_table
from collectors.index.writer import write_batch
from tests.collectors.trace_fixtures import BASE_NS, span


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


# --- spans, span links and finished sagas --------------------------------------------------

NOW_S = 1_700_000_000.0
DAY_MS = 86_400_000


def add_spans(engine, trace: str, count: int, start_ms: int) -> None:
    """`count` spans of one trace, each linking to the trace's first span."""
    base_ms = start_ms - BASE_NS // 1_000_000
    batch = [
        span(trace, f"{n + 1:016x}", start_ms=base_ms + n, links=[(trace, f"{1:016x}")])
        for n in range(count)
    ]
    traces.store_spans(engine, batch, 0)


def add_saga(engine, saga_id: str, status: str, last_ms: int) -> None:
    with engine.begin() as connection:
        connection.execute(insert(sagas_table).values(
            cluster="c", saga_id=saga_id, saga_type=None, status=status, first_ms=last_ms - 10,
            last_ms=last_ms, step_count=1, failed=status == "failed", problem_count=0,
            problems="[]", state="{}", version=1, updated_at_ms=last_ms,
        ))  # fmt: skip


def test_age_retention_deletes_old_spans_with_their_links_in_chunks(index_db) -> None:
    now_ms = int(NOW_S * 1000)
    add_spans(index_db.engine, "a" * 32, 23, start_ms=now_ms - 10 * DAY_MS)  # old
    add_spans(index_db.engine, "b" * 32, 4, start_ms=now_ms - 60_000)  # recent
    policy = RetentionPolicy(max_age_s=7 * 86_400, chunk_rows=5, pause_s=0)
    result = run_round(index_db.engine, policy, now_s=NOW_S)
    assert result.spans == 23
    with index_db.engine.connect() as connection:
        left = {r[0] for r in connection.execute(select(spans_table.c.trace_id))}
        links = {r[0] for r in connection.execute(select(span_links_table.c.trace_id))}
    assert left == links == {"b" * 32}
    assert run_round(index_db.engine, policy, now_s=NOW_S).spans == 0


def test_age_retention_deletes_finished_sagas_then_unfinished_ones_much_later(index_db) -> None:
    now_ms = int(NOW_S * 1000)
    old, recent, ancient = now_ms - 8 * DAY_MS, now_ms - DAY_MS, now_ms - 31 * DAY_MS
    finished = ("completed", "failed", "compensated", "compensation_incomplete")
    for n, status in enumerate(finished * 3):
        add_saga(index_db.engine, f"old-{n}", status, old)
    for status in ("running", "stuck", "compensating"):
        add_saga(index_db.engine, f"open-{status}", status, old)
        add_saga(index_db.engine, f"abandoned-{status}", status, ancient)
    add_saga(index_db.engine, "recent-done", "completed", recent)
    policy = RetentionPolicy(max_age_s=7 * 86_400, chunk_rows=5, pause_s=0)
    assert run_round(index_db.engine, policy, now_s=NOW_S).sagas == 15
    with index_db.engine.connect() as connection:
        kept = {r[0] for r in connection.execute(select(sagas_table.c.saga_id))}
    assert kept == {"open-running", "open-stuck", "open-compensating", "recent-done"}
    # Without the longer bound, a saga that never finishes stays.
    add_saga(index_db.engine, "abandoned-again", "stuck", ancient)
    keep_open = RetentionPolicy(max_age_s=7 * 86_400, unfinished_saga_max_age_s=None, pause_s=0)
    assert run_round(index_db.engine, keep_open, now_s=NOW_S).sagas == 0


def test_unfinished_sagas_expire_even_when_events_are_kept_forever(index_db) -> None:
    ancient = int(NOW_S * 1000) - 31 * DAY_MS
    add_saga(index_db.engine, "abandoned", "stuck", ancient)
    add_saga(index_db.engine, "done-long-ago", "completed", ancient)
    keep_events = RetentionPolicy(max_age_s=None, pause_s=0)  # retention_max_age_s = 0
    assert run_round(index_db.engine, keep_events, now_s=NOW_S).sagas == 1
    with index_db.engine.connect() as connection:
        kept = {r[0] for r in connection.execute(select(sagas_table.c.saga_id))}
    assert kept == {"done-long-ago"}
