"""Lineage edges computed from the index, on SQLite and PostgreSQL.

The scenario: A produces r1 on topic1; B consumes it (single-message consumer span whose
parent is A's producer span) and produces r2 on topic2 and r3 on topic3 (fan-out); C
consumes r2 and fails; D consumes r2 and r3 in one batch (span links) and produces r4.
r5 names r1 as its cause; r6 is r1 in a dead-letter topic; r7 and r8 share only a
correlation id.
"""

from __future__ import annotations

from collectors import lineage, traces
from collectors.traces import FLOW_COLUMNS
from tests.collectors.trace_fixtures import event_row, index_rows, span

T1, T2 = "1" * 32, "2" * 32
P1, C1, P2, P3, C2, D, P4 = (f"{n:016x}" for n in range(1, 8))


def build_scenario(engine) -> dict[str, int]:
    index_rows(engine, [
        event_row("topic1", 0, ts_ms=0, event_id="r1", trace_id=T1, span_id=P1),
        event_row("topic2", 0, ts_ms=10, event_id="r2", trace_id=T1, span_id=P2),
        event_row("topic3", 0, ts_ms=11, event_id="r3", trace_id=T1, span_id=P3),
        event_row("topic4", 0, ts_ms=40, event_id="r4", trace_id=T2, span_id=P4),
        event_row("topic5", 0, ts_ms=50, event_id="r5", causation_id="r1"),
        event_row("topic1.DLT", 0, ts_ms=60, is_dlq=True, dlq_original_topic="topic1",
                  dlq_original_partition=0, dlq_original_offset=0, dlq_error_class="Boom"),
        event_row("loose", 0, ts_ms=70, correlation_id="only-corr"),
        event_row("loose", 1, ts_ms=80, correlation_id="only-corr"),
    ])  # fmt: skip
    traces.store_spans(engine, [
        span(T1, P1, kind=4, service="A", name="send topic1", topic="topic1"),
        span(T1, C1, parent=P1, kind=5, service="B", name="process topic1", start_ms=5,
             topic="topic1", partition=0, offset=0, consumer_group="group-b"),
        span(T1, P2, parent=C1, kind=4, service="B", name="send topic2", start_ms=8),
        span(T1, P3, parent=C1, kind=4, service="B", name="send topic3", start_ms=9),
        span(T1, C2, parent=P2, kind=5, service="C", name="process topic2", start_ms=20,
             status=2, topic="topic2", consumer_group="group-c"),
        span(T2, D, kind=5, service="D", name="process batch", start_ms=30,
             links=[(T1, P2), (T1, P3)], batch_count=2),
        span(T2, P4, parent=D, kind=4, service="D", name="send topic4", start_ms=35),
    ], 0)  # fmt: skip
    with engine.connect() as connection:
        rows = connection.execute(traces.select(*FLOW_COLUMNS)).mappings().all()
    return {row["event_id"] or f"{row['topic']}@{row['offset']}": row["id"] for row in rows}


def _edges(graph, ids) -> set[tuple[str, str, str, str | None]]:
    name = {v: k for k, v in ids.items()}
    return {(name[e.source], name[e.target], e.kind, e.via) for e in graph.edges.values()}


def _root(engine, ids, key):
    return lineage.event_by_id(engine, ids[key])


def test_downstream_of_the_first_record(index_db) -> None:
    ids = build_scenario(index_db.engine)
    graph = lineage.lineage(index_db.engine, _root(index_db.engine, ids, "r1"))
    assert _edges(graph, ids) == {
        ("r1", "r2", "trace", "B"),
        ("r1", "r3", "trace", "B"),
        ("r2", "r4", "trace", "D"),
        ("r3", "r4", "trace", "D"),
        ("r1", "r5", "causation", None),
        ("r1", "topic1.DLT@0", "dead-letter", None),
    }
    name = {v: k for k, v in ids.items()}
    layers = {name[node]: layer for node, layer in graph.layers.items()}
    assert layers == {"r1": 0, "r2": 1, "r3": 1, "r5": 1, "topic1.DLT@0": 1, "r4": 2}
    assert "processing failed in C" in graph.failed[ids["r2"]]
    assert graph.failed[ids["topic1.DLT@0"]].startswith("dead letter: Boom")
    assert ids["r1"] not in graph.failed


def test_upstream_through_a_batch_consumer(index_db) -> None:
    ids = build_scenario(index_db.engine)
    graph = lineage.lineage(index_db.engine, _root(index_db.engine, ids, "r4"))
    assert _edges(graph, ids) == {
        ("r2", "r4", "trace", "D"),
        ("r3", "r4", "trace", "D"),
        ("r1", "r2", "trace", "B"),
        ("r1", "r3", "trace", "B"),
    }
    name = {v: k for k, v in ids.items()}
    assert {name[n]: layer for n, layer in graph.layers.items()} == {
        "r4": 0, "r2": -1, "r3": -1, "r1": -2,
    }  # fmt: skip
    dead = lineage.lineage(index_db.engine, _root(index_db.engine, ids, "topic1.DLT@0"))
    assert ("r1", "topic1.DLT@0", "dead-letter", None) in _edges(dead, ids)
    cause = lineage.lineage(index_db.engine, _root(index_db.engine, ids, "r5"))
    assert ("r1", "r5", "causation", None) in _edges(cause, ids)


def test_correlation_is_only_a_fallback(index_db) -> None:
    ids = build_scenario(index_db.engine)
    graph = lineage.lineage(index_db.engine, _root(index_db.engine, ids, "loose@0"))
    assert _edges(graph, ids) == {("loose@0", "loose@1", "correlation", None)}


def test_a_wide_graph_is_capped(index_db) -> None:
    """600 events caused by one: the graph stops at the cap and says so."""
    engine = index_db.engine
    rows = [event_row("wide", 0, event_id="root")]
    rows += [event_row("wide", n, ts_ms=n, causation_id="root", event_id=f"w{n}")
             for n in range(1, 601)]  # fmt: skip
    index_rows(engine, rows)
    with engine.connect() as connection:
        root_id = connection.execute(
            traces.select(traces.events.c.id).where(traces.events.c.event_id == "root")
        ).scalar_one()
    # How fast is bench/lineage.py's job.
    graph = lineage.lineage(engine, lineage.event_by_id(engine, root_id), max_nodes=500)
    assert len(graph.nodes) == 500 and graph.truncated


def test_correlation_steps_are_batched_and_past_a_full_window_still_found(
    index_db, monkeypatch
) -> None:
    """Leaves of a fan-out share a correlation id: one query per level finds each leaf's
    time-order neighbour; with a window smaller than the flow, the rest are still found."""
    engine = index_db.engine
    rows = [event_row("fan", 0, event_id="root", correlation_id="flow")]
    rows += [event_row("fan", n, ts_ms=n * 10, causation_id="root", event_id=f"leaf{n}",
                       correlation_id="flow") for n in range(1, 6)]  # fmt: skip
    rows += [event_row("after", 0, ts_ms=1_000, correlation_id="flow")]
    index_rows(engine, rows)
    with engine.connect() as connection:
        ids = {
            r["event_id"] or f"{r['topic']}@{r['offset']}": r["id"]
            for r in connection.execute(traces.select(*FLOW_COLUMNS)).mappings()
        }
    for window in (lineage.CORRELATION_WINDOW, 2):
        monkeypatch.setattr(lineage, "CORRELATION_WINDOW", window)
        graph = lineage.lineage(engine, _root(engine, ids, "root"))
        assert ("leaf5", "after@0", "correlation", None) in _edges(graph, ids), window
        assert len(graph.nodes) == 7
        up = lineage.lineage(engine, _root(engine, ids, "after@0"))
        assert ("leaf5", "after@0", "correlation", None) in _edges(up, ids), window
