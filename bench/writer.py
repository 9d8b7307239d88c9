"""Index writer benchmark: the cost of a row as the index grows, without Kafka.

    python bench/writer.py [--rows 1000000] [--window 200000] [--no-saga]
        [--cache-kib 16384] [--random-ids] [--pg-url URL] [--summary FILE]

Normalises the records bench/ingest.py produces (same headers and values) and adds them
in batches of 500 through `BatchWriter`, as the collector's writer process does (group
commit every 20,000 rows, the saga hook unless --no-saga), into a fresh SQLite file, or
with --pg-url into a new database on that PostgreSQL server, dropped at the end (no saga
hook there: on PostgreSQL the saga follower derives sagas after the commit). Only
the writer's time is counted. Prints microseconds per row for every window of rows, so
that a cost growing with the index shows. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import report, scratch_dir  # noqa: E402
from bench.ingest import PARTITIONS, fresh_pg_database, record  # noqa: E402
from collectors.conventions import Conventions, RawRecord, normalize  # noqa: E402
from collectors.index import engine as index_engine  # noqa: E402
from collectors.index import migrate  # noqa: E402
from collectors.index.writer import BatchWriter  # noqa: E402
from collectors.kafka.tap import to_row  # noqa: E402
from collectors.sagas import SagaHook, SagaOptions  # noqa: E402

BATCH = 500
TOPIC = "bench-writer"
BASE_MS = 1_790_000_000_000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=200_000)
    parser.add_argument("--no-saga", action="store_true", help="without the saga hook")
    parser.add_argument("--cache-kib", type=int, default=index_engine.SQLITE_CACHE_KIB)
    parser.add_argument("--random-ids", action="store_true", help="UUID event and correlation ids")
    parser.add_argument("--pg-url", help="write to a new database on this PostgreSQL server")
    parser.add_argument("--summary", help="also write the result rows to this JSON file")
    args = parser.parse_args()
    if args.rows < BATCH or args.window < BATCH:
        parser.error(f"--rows and --window must be at least {BATCH}")

    index_engine.SQLITE_CACHE_KIB = args.cache_kib  # read when a connection opens
    path = scratch_dir() / "writer.db"
    if args.pg_url:
        engine = index_engine.create_index_engine(fresh_pg_database(args.pg_url))
        args.no_saga = True
    else:
        engine = index_engine.create_index_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    hooks = [] if args.no_saga else [SagaHook(SagaOptions())]
    writer = BatchWriter(engine, "bench", hooks)
    conventions = Conventions()

    wal_start = _wal_bytes(engine) if args.pg_url else 0
    rows: list[tuple[str, str]] = []
    window_s = total_s = 0.0
    window_start = 0
    for start in range(0, args.rows, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, args.rows)):
            key, value, headers = record(i, "w", args.random_ids)
            raw = RawRecord(TOPIC, i % PARTITIONS, i // PARTITIONS, BASE_MS + i, key, value,
                            headers)  # fmt: skip
            batch.append(to_row("bench", normalize(raw, conventions), BASE_MS))
        positions = {(TOPIC, row[3]): row[4] + 1 for row in batch}
        began = time.perf_counter()
        writer.add(batch, positions, BASE_MS)
        took = time.perf_counter() - began
        window_s += took
        total_s += took
        done = start + len(batch)
        if done - window_start >= args.window or done == args.rows:
            rows.append(
                (f"rows {window_start:,}-{done:,}",
                 f"{window_s / (done - window_start) * 1e6:.1f} us/row")
            )  # fmt: skip
            window_start, window_s = done, 0.0
    began = time.perf_counter()
    writer.commit()
    total_s += time.perf_counter() - began
    rows.append(("all rows", f"{total_s / args.rows * 1e6:.1f} us/row"))
    if args.pg_url:
        wal = _wal_bytes(engine) - wal_start
        rows.append(("WAL written", f"{wal / args.rows:,.0f} bytes/row"))
        rows.append(("events on disk", f"{_events_bytes(engine) / args.rows:,.0f} bytes/row"))
    engine.dispose()
    label = "no saga hook" if args.no_saga else "saga hook"
    if args.pg_url:
        rows.append(("setup", f"PostgreSQL, {label}"))
    else:
        size_mb = path.stat().st_size >> 20
        rows.append(("setup", f"{label}, {args.cache_kib:,} KiB page cache, {size_mb:,} MB file"))
    report("writer", rows, args.summary)
    return 0


def _wal_bytes(engine) -> int:
    """PostgreSQL's WAL position, in bytes since the cluster began."""
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
        ).scalar_one())  # fmt: skip


def _events_bytes(engine) -> int:
    """The events' partitions with their indexes and TOAST, in bytes."""
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
            " WHERE inhparent = 'events'::regclass"
        ).scalar_one())  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
