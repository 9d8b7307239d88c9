"""How long migration 0014 takes to partition an existing PostgreSQL index by day.

    python bench/partitioning.py --pg-url postgresql+psycopg://... [--rows 1000000]

Makes a new database on the server, migrates it to 0013 (before partitioning), fills
`events` with `--rows` rows stamped over the last 30 days (generated in SQL: ~500-byte
values, identity hashes on every row, one in four with a causation id), then times the
upgrade to head, which attaches the table as one partition and builds its two new unique
indexes. Prints the time and the rows per partition after. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import report  # noqa: E402
from bench.ingest import fresh_pg_database  # noqa: E402
from collectors.index import migrate  # noqa: E402
from collectors.index.engine import create_index_engine  # noqa: E402

FILL = """
INSERT INTO events (cluster, topic, "partition", "offset", timestamp_ms, indexed_at_ms,
    key, key_hash, value, value_size, value_truncated, is_tombstone, content_type, headers,
    event_id, correlation_id, causation_id, trace_id, is_dlq,
    event_id_hash, correlation_hash, causation_hash, trace_hash)
SELECT 'bench', 'orders', i % 6, i, CAST(:first AS bigint) + i * CAST(:step AS bigint), :now,
    convert_to('order-' || i / 4, 'UTF8'), (random() * 9e18)::bigint,
    convert_to(repeat('x', 500), 'UTF8'), 500, false, false, 'json', '[]',
    'evt-' || i, 'order-' || i / 4, CASE WHEN i % 4 = 0 THEN 'evt-' || i - 1 END,
    md5(i::text), false,
    (random() * 9e18)::bigint, (random() * 9e18)::bigint,
    CASE WHEN i % 4 = 0 THEN (random() * 9e18)::bigint END, (random() * 9e18)::bigint
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint) - 1) AS i
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", required=True, help="a PostgreSQL server (a database is made)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    engine = create_index_engine(fresh_pg_database(args.pg_url))
    migrate.upgrade(engine, "0013")
    now_ms = int(time.time() * 1000)
    days_ms = 30 * 86_400_000
    began = time.perf_counter()
    for lo in range(0, args.rows, 100_000):
        with engine.begin() as connection:
            connection.execute(
                text(FILL),
                {"first": now_ms - days_ms, "step": days_ms // args.rows, "now": now_ms,
                 "lo": lo, "hi": min(lo + 100_000, args.rows)},
            )  # fmt: skip
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE events")
    filled_s = time.perf_counter() - began

    began = time.perf_counter()
    migrate.upgrade(engine)
    took_s = time.perf_counter() - began
    with engine.connect() as connection:
        counts = connection.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1")
        ).all()
    engine.dispose()
    rows = [
        ("rows", f"{args.rows:,} (filled in {filled_s:.1f} s)"),
        ("upgrade 0013 -> head", f"{took_s:.1f} s ({took_s / args.rows * 1e6:.1f} s a million)"),
        *((f"rows in {name}", f"{count:,}") for name, count in counts),
    ]
    report("partitioning", rows, None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
