"""Ingest and look-up benchmark.

    python bench/ingest.py --bootstrap 127.0.0.1:9092 [--records 1000000]
        [--backends sqlite,postgresql] [--pg-url postgresql+psycopg://...]
        [--lookup-sizes 1000000,10000000] [--topic NAME] [--repeat N]
        [--format json|avro|protobuf] [--schema-registry URL] [--saga-freshness]
        [--collectors N]

1. Produces N records with realistic headers (CloudEvents binary mode, traceparent,
   correlation id) and ~500-byte JSON values to a fresh topic; with --format avro or
   protobuf, the same fields in the schema registry's wire format (bench/formats.py),
   which the collector then decodes through the registry.
2. Measures the raw aiokafka consume rate of that topic (no indexing), then the
   collector's end-to-end indexing rate: a real `eventscope collect` process per backend,
   timed from start until every record is in the index, with its peak RSS.
   With --saga-freshness it also measures how long the sagas trail ingest: every 0.1 s
   it notes the newest visible events row and the saga follower's cursor; an event's
   freshness is the time from the poll that first saw it committed to the first poll
   whose cursor covers it (p50/p95 over the run, ±0.1 s), plus how long after the last
   row the sagas caught up. Every record of the run carries a saga id (its correlation id).
3. Measures look-up latency (p50/p95) by correlation id, event id and trace id on indexes
   of the given sizes (filled past N with rows written the way the collector writes them,
   stamped over the last 30 days: on PostgreSQL 30 day partitions and more).

Prints a table; nothing is asserted. Without --bootstrap it starts the local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.formats import FORMATS, ValueEncoder, start_local_registry  # noqa: E402
from bench.harness import free_port, report, scratch_dir, start_local_broker  # noqa: E402
from collectors.conventions import Conventions, RawRecord, normalize  # noqa: E402
from collectors.index import migrate, partitions  # noqa: E402
from collectors.index.engine import create_index_engine  # noqa: E402
from collectors.index.event_row import EVENT_COLUMNS, event_row  # noqa: E402
from collectors.index.identity import text_hash  # noqa: E402
from collectors.index.models import events_table, positions_table  # noqa: E402
from collectors.index.saga_models import saga_cursor_table  # noqa: E402
from collectors.index.writer import write_batch  # noqa: E402
from collectors.kafka.tap import to_row  # noqa: E402
from console.stores.events import EventFilter, search_events  # noqa: E402

PARTITIONS = 6
TEMPLATES = 2_000  # distinct normalized records behind the look-up filler rows


def record(
    i: int, run: str, random_ids: bool = False
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Record i of a run: 4 events per order (one correlation id), a fresh trace each.

    Event and correlation ids are sequential text unless `random_ids` (UUIDs, as many
    producers make them): random keys cost an index more (docs/benchmarks.md).
    """
    order = i // 4
    trace = f"{random.getrandbits(128):032x}"
    event_id = str(uuid.uuid4()) if random_ids else f"{run}-evt-{i}"
    correlation_id = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{run}-{order}")) if random_ids else None
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_type", random.choice([b"OrderPlaced", b"PaymentCaptured", b"OrderShipped"])),
        ("ce_source", b"/shop/orders"),
        ("ce_time", b"2026-11-29T12:00:00Z"),
        ("content-type", b"application/json"),
        ("traceparent", f"00-{trace}-{random.getrandbits(64):016x}-01".encode()),
        ("x-correlation-id", (correlation_id or f"{run}-order-{order}").encode()),
    ]
    value = json.dumps(
        {
            "orderId": f"order-{order}",
            "customer": {"id": f"c-{i % 9973}", "tier": "gold", "country": "NL"},
            "lines": [
                {"sku": f"sku-{(i + n) % 500}", "qty": n + 1, "price": 19.99} for n in range(4)
            ],
            "total": 79.96,
            "currency": "EUR",
            "note": "x" * 120,
        }
    ).encode()
    return f"order-{order}".encode(), value, headers


async def produce(
    bootstrap: str,
    topic: str,
    count: int,
    run: str,
    random_ids: bool = False,
    encode: Callable[[bytes], bytes] = bytes,
) -> float:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1,
        compression_type="lz4" if _has_lz4() else None,
    )  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    pending = []
    for i in range(count):
        key, value, headers = record(i, run, random_ids)
        pending.append(await producer.send(topic, encode(value), key=key, headers=headers))
        if len(pending) >= 20_000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await producer.stop()
    return time.perf_counter() - started


def _has_lz4() -> bool:
    try:
        import lz4  # noqa: F401
    except ImportError:
        return False
    return True


async def raw_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    await consumer.seek_to_beginning()
    seen = 0
    started = time.perf_counter()
    while seen < count:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        seen += sum(len(records) for records in batches.values())
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return count / elapsed


def count_rows(engine, topic: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(events_table).where(events_table.c.topic == topic)
        ).scalar_one()


def undecoded_rows(engine, topic: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(events_table)
            .where(events_table.c.topic == topic, events_table.c.decode_state != "decoded")
        ).scalar_one()


def indexed_so_far(engine, topic: str) -> int:
    """Records indexed so far, from the stored positions (they commit with the rows), for
    a topic whose partitions start at offset 0: a query that stays cheap while the run
    polls it ten times a second, where counting rows would scan the index each time."""
    with engine.connect() as connection:
        total = connection.execute(
            select(func.coalesce(func.sum(positions_table.c.next_offset), 0)).where(
                positions_table.c.topic == topic
            )
        ).scalar_one()
    return int(total)  # PostgreSQL sums BIGINT as NUMERIC


def saga_progress(engine) -> tuple[int, int]:
    """(the newest visible events row id, the saga follower's cursor): two key look-ups."""
    with engine.connect() as connection:
        newest = connection.execute(select(func.max(events_table.c.id))).scalar()
        cursor = connection.execute(select(saga_cursor_table.c.last_id)).scalar()
    return int(newest or 0), int(cursor or 0)


def freshness_latencies(samples: list[tuple[float, int, int]]) -> list[float]:
    """From polls (time, newest id, cursor): for each poll that saw new rows, the seconds
    until the first poll whose cursor reached its newest id."""
    latencies = []
    seen, j = 0, 0
    for t, newest, _cursor in samples:
        if newest <= seen:
            continue
        seen = newest
        while j < len(samples) and samples[j][2] < newest:
            j += 1
        if j == len(samples):
            break
        latencies.append(max(samples[j][0] - t, 0.0))
    return latencies


def collector_rate(
    bootstrap: str,
    topic: str,
    count: int,
    index_url: str,
    work: Path,
    writer: str,
    registry_url: str | None = None,
    saga_freshness: bool = False,
    collectors: int = 1,
) -> dict:
    """Run real `eventscope collect` processes (`collectors` of them, one consumer group)
    until the topic is indexed; rate and peak RSS.

    RSS is the collectors' and their child processes' together, sampled every 0.1 s. With
    `saga_freshness`, also how long the saga follower trails (the module's docstring).
    """
    engine = create_index_engine(index_url)
    migrate.upgrade(engine)
    config = work / f"collect-{uuid.uuid4().hex[:6]}.toml"
    registry = f'schema_registry = "{registry_url}"\n' if registry_url else ""
    config.write_text(
        f"[clusters.bench]\nbootstrap = \"{bootstrap}\"\ninclude = ['{topic}']\n{registry}"
        f'[collector]\ngroup_id = "bench-{uuid.uuid4().hex[:8]}"\nwriter = "{writer}"\n'
        f'[index]\nurl = "{index_url}"\n'
    )
    command = [sys.executable, "-m", "console.cli", "--config", str(config), "collect"]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env={**os.environ, "EVENTSCOPE_PORT": str(free_port())},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(collectors)
    ]  # fmt: skip
    peak_rss = 0
    started = None
    cpu_start: dict[int, float] = {}
    server_start: dict[int, float] = {}  # PostgreSQL's processes
    server_end: dict[int, float] = {}
    cpu_end: dict[int, float] = {}
    samples: list[tuple[float, int, int]] = []  # (time, newest id, saga cursor)
    caught_up_s = float("nan")
    try:
        while True:
            tree = [pid for process in processes for pid in _process_tree(process.pid)]
            peak_rss = max(peak_rss, sum(map(_rss_bytes, tree)))
            done = indexed_so_far(engine, topic)
            if saga_freshness:
                samples.append((time.perf_counter(), *saga_progress(engine)))
            if started is None and done > 0:
                started = time.perf_counter()
                first = done
                cpu_start = {pid: _cpu_seconds(pid) for pid in tree}
                server_start = {pid: _cpu_seconds(pid) for pid in _postgres_pids()}
            if started is not None:
                cpu_end.update({pid: _cpu_seconds(pid) for pid in tree})
            if done >= count:  # PostgreSQL's at the end only: a scan of /proc is no poll's
                server_end = {pid: _cpu_seconds(pid) for pid in _postgres_pids()}
                break
            if any(process.poll() is not None for process in processes):
                raise RuntimeError("a collector exited")
            time.sleep(0.1)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        if saga_freshness:  # until the sagas reflect the last row too (at most 5 minutes)
            last_row = time.perf_counter()
            while samples[-1][2] < samples[-1][1] and time.perf_counter() - last_row < 300:
                time.sleep(0.1)
                samples.append((time.perf_counter(), *saga_progress(engine)))
            if samples[-1][2] >= samples[-1][1]:
                caught_up_s = samples[-1][0] - last_row
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    indexed = count_rows(engine, topic)
    if indexed != count:
        raise RuntimeError(f"{indexed:,} rows indexed for {count:,} records")
    if registry_url and undecoded_rows(engine, topic):
        raise RuntimeError(f"{undecoded_rows(engine, topic):,} rows were not decoded")
    # Rows appear a commit at a time (up to 20,000): with too few records there is no span.
    timed = count - first >= count // 2 and elapsed > 0
    rate = (count - first) / elapsed if timed else float("nan")
    # CPU of the collector and of its writer process, in % of one core over the timed span.
    busy = [
        100 * (cpu_end[pid] - cpu_start.get(pid, 0.0)) / elapsed if timed else float("nan")
        for pid in sorted(cpu_end)
    ]
    # PostgreSQL's processes on this machine (none for SQLite), all of them together.
    server = sum(end - server_start.get(pid, 0.0) for pid, end in server_end.items())
    result = {"rate": rate, "peak_rss_mb": peak_rss / 2**20, "cpu_percent": busy,
              "server_cpu_percent": 100 * server / elapsed if timed else float("nan")}  # fmt: skip
    if saga_freshness:
        latencies = freshness_latencies(samples)
        if len(latencies) >= 2:
            cuts = statistics.quantiles(latencies, n=100)
            result["freshness"] = (cuts[49], cuts[94], len(latencies), caught_up_s)
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_pids() -> list[int]:
    """The PostgreSQL server's processes running on this machine (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _rss_bytes(pid: int) -> int:
    return _status_kb(pid, "VmRSS:") * 1024


def _process_tree(pid: int) -> list[int]:
    """The process and its descendants (Linux /proc)."""
    tree = [pid]
    for member in tree:
        for task in Path(f"/proc/{member}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                tree.extend(int(child) for child in task.read_text().split())
    return tree


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fill_index(engine, target: int, run: str, days: int = 30) -> None:
    """Add synthetic rows until the index holds `target`.

    A few thousand records are normalized the collector's way; every row after that is
    one of them with fresh coordinates and identities (event, correlation, causation and
    trace ids, key), so that filling 10 million rows costs the inserts, not the Python.
    Row i of `target` is stamped i/target of the way through the `days` before now; on
    PostgreSQL every one of those days has its partition (collectors/index/partitions.py).
    """
    now_ms = int(time.time() * 1000)
    first_ms = now_ms - days * partitions.DAY_MS
    partitions.ensure_days(engine, first_ms, now_ms + partitions.DAY_MS)
    step_ms = days * partitions.DAY_MS / max(target, 1)
    conventions = Conventions()
    with engine.connect() as connection:
        have = connection.execute(select(func.count()).select_from(events_table)).scalar_one()
    topic = f"filler-{run}"
    templates = []
    for i in range(TEMPLATES):
        key, value, headers = record(i, f"{run}-fill")
        raw = RawRecord(topic, 0, i, 0, key, value, headers)
        row = to_row("bench", normalize(raw, conventions), 0)
        templates.append(dict(zip(EVENT_COLUMNS, row, strict=True)))
    offset = have  # after the rows of a smaller size: new coordinates
    batch = 20_000
    while have < target:
        n = min(batch, target - have)
        rows = []
        for i in range(offset, offset + n):
            order = i // 4
            key = f"order-{order}".encode()
            row = templates[i % TEMPLATES] | {
                "partition": i % PARTITIONS,
                "offset": i,
                "timestamp_ms": first_ms + int(i * step_ms),
                "key": key,
                "key_hash": text_hash(key),
                "event_id": f"{run}-fill-evt-{i}",
                "correlation_id": f"{run}-fill-order-{order}",
                "causation_id": f"{run}-fill-evt-{i - 1}" if i % 4 else None,
                "trace_id": f"{random.getrandbits(128):032x}",
                "span_id": f"{random.getrandbits(64):016x}",
            }
            rows.append(event_row(**row))  # with the identity hashes of the new ids
        write_batch(engine, "bench", rows, {}, 0)
        offset += n
        have += n


def lookup_latencies(
    engine, run: str, size: int, samples: int = 200
) -> dict[str, tuple[float, float]]:
    """p50/p95 in ms of searches by each identity over random existing ids."""
    with engine.connect() as connection:
        ids = connection.execute(
            select(events_table.c.correlation_id, events_table.c.event_id, events_table.c.trace_id)
            .where(events_table.c.id.in_([random.randint(1, size) for _ in range(samples * 2)]))
            .limit(samples)
        ).all()
    results = {}
    for name, column in (("correlation id", 0), ("event id", 1), ("trace id", 2)):
        timings = []
        for row in ids:
            f = EventFilter(**{
                "correlation id": {"correlation_id": row[column]},
                "event id": {"event_id": row[column]},
                "trace id": {"trace_id": row[column]},
            }[name])  # fmt: skip
            started = time.perf_counter()
            result = search_events(engine, f)
            timings.append((time.perf_counter() - started) * 1000)
            assert result.events, f"{name} {row[column]} not found"
        timings.sort()
        results[name] = (statistics.median(timings), timings[int(len(timings) * 0.95) - 1])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("EVENTSCOPE_BENCH_PG_URL"))
    parser.add_argument("--lookup-sizes", default="1000000,10000000")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--random-ids", action="store_true", help="UUID event and correlation ids")
    parser.add_argument(
        "--topic", help="index this topic, produced by an earlier run with as many --records"
    )
    parser.add_argument("--summary", help="also write the result rows to this JSON file")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="index the topic this many times per backend (a run varies by several percent)",
    )  # fmt: skip
    parser.add_argument(
        "--writers", default="process", help="collector.writer values to compare: process,thread"
    )
    parser.add_argument(
        "--format",
        default="json",
        choices=FORMATS,
        help="the values' wire format (avro and protobuf through a registry)",
    )
    parser.add_argument("--schema-registry", help="a registry's URL (default: start a local one)")
    parser.add_argument(
        "--collectors", type=int, default=1,
        help="eventscope collect processes sharing the work (one consumer group)",
    )  # fmt: skip
    parser.add_argument(
        "--saga-freshness", action="store_true",
        help="also measure how long the sagas trail ingest (p50/p95 from commit to saga)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not 1 <= args.collectors <= PARTITIONS:
        parser.error(f"--collectors must be between 1 and {PARTITIONS} (the topic's partitions)")
    backends = [b for b in args.backends.split(",") if b]
    if "postgresql" in backends and not args.pg_url:
        parser.error("--pg-url (or EVENTSCOPE_BENCH_PG_URL) is needed for the postgresql backend")
    bootstrap = args.bootstrap or start_local_broker()
    registry_url = None
    if args.format != "json":
        registry_url = args.schema_registry or start_local_registry()
    run = uuid.uuid4().hex[:6]
    work = scratch_dir()
    rows: list[tuple[str, str]] = []
    writers = [w for w in args.writers.split(",") if w]

    def fresh_url(backend: str, label: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{work / f'bench-{label}.db'}"
        return fresh_pg_database(args.pg_url)

    urls = {backend: fresh_url(backend, "lookups") for backend in backends}
    if not args.skip_ingest:
        topic = args.topic or f"bench-ingest-{run}"
        rows.append(("format", args.format))
        if not args.topic:
            encode = ValueEncoder(args.format, registry_url, topic).encode
            took = asyncio.run(
                produce(bootstrap, topic, args.records, run, args.random_ids, encode)
            )
            rows.append(
                ("produce",
                 f"{args.records:,} records in {took:.1f} s ({args.records / took:,.0f}/s)")
            )  # fmt: skip
        rows.append(("topic", topic))
        raw = asyncio.run(raw_consume_rate(bootstrap, topic, args.records))
        rows.append(("raw aiokafka consume", f"{raw:,.0f} records/s"))
        for backend in backends:
            for writer in writers:
                rates = []
                for attempt in range(1, args.repeat + 1):
                    url = fresh_url(backend, f"{writer}-{attempt}")
                    result = collector_rate(
                        bootstrap, topic, args.records, url, work, writer, registry_url,
                        args.saga_freshness, args.collectors,
                    )  # fmt: skip
                    _drop_sqlite_files(url)
                    rates.append(result["rate"])
                    label = f" #{attempt}" if args.repeat > 1 else ""
                    label += f" x{args.collectors} collectors" if args.collectors > 1 else ""
                    rows.append(
                        (f"collector -> {backend} (writer {writer}){label}",
                         f"{result['rate']:,.0f} events/s ({result['rate'] / raw:.0%} of raw), "
                         f"peak RSS {result['peak_rss_mb']:.0f} MB, CPU "
                         + " + ".join(f"{p:.0f}%" for p in result["cpu_percent"])
                         + (f", PostgreSQL {result['server_cpu_percent']:.0f}%"
                            if backend == "postgresql" else ""))
                    )  # fmt: skip
                    if "freshness" in result:
                        p50, p95, polls, caught_up = result["freshness"]
                        rows.append(
                            (f"saga freshness -> {backend}{label}",
                             f"p50 {p50:.2f} s, p95 {p95:.2f} s ({polls} polls), caught up "
                             f"{caught_up:.1f} s after the last row")
                        )  # fmt: skip
                if args.repeat > 1:
                    rows.append(
                        (f"collector -> {backend} (writer {writer}), {args.repeat} runs",
                         f"median {statistics.median(rates):,.0f}, "
                         f"{min(rates):,.0f}-{max(rates):,.0f} events/s")
                    )  # fmt: skip
    for backend in backends:
        engine = create_index_engine(urls[backend])
        migrate.upgrade(engine)
        for size in [int(s) for s in args.lookup_sizes.split(",") if s]:
            fill_index(engine, size, run)
            if backend == "postgresql":
                with engine.connect() as connection:
                    days = len(partitions.list_partitions(connection))
                rows.append((f"partitions @ {size:,} (postgresql)", f"{days} (a day each)"))
            for name, (p50, p95) in lookup_latencies(engine, run, size).items():
                rows.append(
                    (f"lookup {name} @ {size:,} ({backend})", f"p50 {p50:.2f} ms, p95 {p95:.2f} ms")
                )
    report("ingest", rows, args.summary)
    return 0


def _drop_sqlite_files(url: str) -> None:
    """Delete a measured SQLite index (a million events take over a gigabyte)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


_PG_DATABASES: list[tuple[str, str]] = []  # (server url, name) made by this run


def fresh_pg_database(server_url: str) -> str:
    """A new database on the server, dropped when the benchmark exits."""
    from sqlalchemy.engine import make_url

    name = f"es_bench_{uuid.uuid4().hex[:8]}"
    _pg_admin(server_url, f'CREATE DATABASE "{name}"')
    if not _PG_DATABASES:
        atexit.register(_drop_pg_databases)
    _PG_DATABASES.append((server_url, name))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_databases() -> None:
    for server_url, name in _PG_DATABASES:
        with contextlib.suppress(Exception):
            _pg_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_admin(server_url: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement))
    admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
