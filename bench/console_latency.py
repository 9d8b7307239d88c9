"""Console latency under concurrent clients while the collector ingests.

    python bench/console_latency.py --bootstrap 127.0.0.1:9092 [--clients 20]
        [--duration 30] [--seed-records 50000] [--ingest-rate 2000] [--index-url ...]
        [--backlog N] [--separate]

1. Produces `--seed-records` records (CloudEvents headers, traceparent, correlation ids,
   ~500-byte JSON values, some of them dead letters) to fresh topics.
2. Starts a real `eventscope serve` (console and collectors in one process, auth off on
   loopback), or with --separate `eventscope collect` and `eventscope console`, and waits
   until the seed is indexed. With --backlog N, N more records are produced first: the
   collector is still indexing them at its full rate while the clients measure.
3. For `--duration` seconds, `--clients` concurrent clients request the pages an on-call
   engineer uses (events search, search by correlation id, event detail, correlation
   trace, lineage, consumer groups, DLQ, sagas, topology, clusters and their JSON twins)
   while a producer keeps adding `--ingest-rate` records per second.

Prints p50/p95 per page and overall, errors, and the ingest rate reached meanwhile.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError, ProgrammingError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, report, scratch_dir, start_local_broker  # noqa: E402
from collectors.index.engine import create_index_engine  # noqa: E402
from collectors.index.models import events_table  # noqa: E402

PARTITIONS = 3


def make_record(run: str, i: int) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """One record of an order flow: topic, key, value, headers."""
    order = i // 3
    topic = (f"bench-orders-{run}", f"bench-payments-{run}", f"bench-shipping-{run}")[i % 3]
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{run}-{i}".encode()),
        ("ce_type", (b"OrderPlaced", b"PaymentCaptured", b"OrderShipped")[i % 3]),
        ("ce_source", b"/bench/shop"),
        ("correlation_id", f"{run}-order-{order}".encode()),
        ("traceparent", f"00-{order:032x}-{i:016x}-01".encode()),
        ("content-type", b"application/json"),
    ]
    body = {"orderId": order, "items": [{"sku": f"SKU-{i % 97}", "qty": 1 + i % 3}] * 5}
    body["note"] = "x" * max(0, 500 - len(json.dumps(body)))
    return topic, f"order-{order}".encode(), json.dumps(body).encode(), headers


async def produce(bootstrap: str, run: str, start: int, count: int, rate: float) -> int:
    """Send `count` records from index `start`, paced at `rate` per second (0: flat out)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    began = time.perf_counter()
    try:
        for i in range(start, start + count):
            topic, key, value, headers = make_record(run, i)
            if i % 200 == 199:  # a dead letter now and then, the Spring Kafka way
                topic = f"bench-payments-{run}.DLT"
                headers += [
                    ("kafka_dlt-original-topic", f"bench-payments-{run}".encode()),
                    ("kafka_dlt-exception-message", b"card declined"),
                    ("kafka_dlt-exception-fqcn", b"com.example.PaymentDeclined"),
                ]
            await producer.send(topic, value, key=key, headers=headers)
            if rate and (i - start) % 100 == 99:
                ahead = (i - start + 1) / rate - (time.perf_counter() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def create_topics(bootstrap: str, run: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    names = [f"bench-{name}-{run}" for name in ("orders", "payments", "shipping")]
    names.append(f"bench-payments-{run}.DLT")
    await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    await admin.close()


def start_eventscope(
    bootstrap: str, run: str, index_url: str, port: int, work: Path, command: str = "serve"
):
    """`eventscope serve` (console and collectors), or one of `console` and `collect`."""
    config = work / "console.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\nauth = "off"\n'
        f'[index]\nurl = "{index_url}"\n'
        f'[collector]\ngroup_id = "bench-console-{run}"\n'
        f"[clusters.bench]\nbootstrap = \"{bootstrap}\"\ninclude = ['bench-.*-{run}.*']\n"
    )
    argv = [sys.executable, "-m", "console.cli", "--config", str(config), command]
    log = (work / f"{command}.log").open("wb")
    # A collector on its own serves its health on the port too: another one for it.
    env = {**os.environ, "EVENTSCOPE_PORT": str(free_port())} if command == "collect" else None
    return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)


async def wait_indexed(engine: Engine, run: str, at_least: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    total = 0
    while time.monotonic() < deadline:
        try:
            total = await indexed_count(engine, run)
            if total >= at_least:
                return total
        except (OperationalError, ProgrammingError):  # the tables are not made yet
            pass
        await asyncio.sleep(1)
    raise RuntimeError(f"only {total} of {at_least} records indexed in {timeout_s:.0f} s")


async def wait_answering(client: httpx.AsyncClient, timeout_s: float = 60) -> None:
    """Until the console answers (it may start after the seed is indexed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (await client.get("/healthz", timeout=5)).status_code < 500:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def indexed_count(engine: Engine, run: str) -> int:
    """Records of this run in the index, read straight from the database."""

    def count() -> int:
        query = select(func.count()).select_from(events_table)
        with engine.connect() as connection:
            return connection.execute(query.where(events_table.c.cluster == "bench")).scalar_one()

    return await asyncio.to_thread(count)


def page_requests(run: str, seed: int) -> dict[str, list[str]]:
    """The URLs each client picks from, by page name."""
    orders = [random.randrange(seed // 3) for _ in range(200)]
    coordinates = [
        (f"bench-orders-{run}", order % PARTITIONS, order // PARTITIONS)
        for order in random.sample(range(seed // 3 // PARTITIONS * PARTITIONS), 200)
    ]
    return {
        "events (newest)": ["/events", f"/events?topic=bench-orders-{run}"],
        "events by correlation id": [f"/events?correlation_id={run}-order-{o}" for o in orders],
        "api events by correlation id": [
            f"/api/events?correlation_id={run}-order-{o}" for o in orders
        ],
        "event detail": [f"/events/bench/{t}/{p}/{o // 3}" for t, p, o in coordinates],
        "correlation trace": [f"/trace/{run}-order-{o}" for o in orders],
        "lineage": [f"/api/lineage/bench/{t}/{p}/{o // 3}" for t, p, o in coordinates],
        "consumer groups": ["/groups", "/api/groups"],
        "dlq": ["/dlq", f"/dlq/bench/bench-payments-{run}.DLT"],
        "sagas": ["/sagas"],
        "topology": ["/topology"],
        "clusters / topics": ["/clusters", "/clusters/bench"],
    }


async def client_loop(
    client: httpx.AsyncClient,
    pages: dict[str, list[str]],
    until: float,
    timings: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    names = list(pages)
    while time.monotonic() < until:
        name = random.choice(names)
        url = random.choice(pages[name])
        started = time.perf_counter()
        try:
            answer = await client.get(url, timeout=60)
            failed = answer.status_code >= 400
        except httpx.HTTPError:
            failed = True
        timings[name].append((time.perf_counter() - started) * 1000)
        if failed:
            errors[name] = errors.get(name, 0) + 1


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def run(args: argparse.Namespace) -> list[tuple[str, str]]:
    bootstrap = args.bootstrap or start_local_broker()
    run_id = uuid.uuid4().hex[:6]
    work = scratch_dir("eventscope-bench-console-")
    index_url = args.index_url or f"sqlite:///{work / 'index.db'}"
    await create_topics(bootstrap, run_id)
    print(f"producing {args.seed_records + args.backlog:,} records ...", flush=True)
    await produce(bootstrap, run_id, 0, args.seed_records + args.backlog, 0)
    port = free_port()
    engine = create_index_engine(index_url)
    if args.separate:  # the collector first: it makes the index; then the console
        processes = [start_eventscope(bootstrap, run_id, index_url, port, work, "collect")]
        await wait_indexed(engine, run_id, 1, timeout_s=120)
        processes.append(start_eventscope(bootstrap, run_id, index_url, port, work, "console"))
    else:
        processes = [start_eventscope(bootstrap, run_id, index_url, port, work)]
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits) as client:
            print("waiting for the seed to be indexed ...", flush=True)
            await wait_indexed(engine, run_id, args.seed_records, timeout_s=600)
            await wait_answering(client)
            pages = page_requests(run_id, args.seed_records)
            timings: dict[str, list[float]] = {name: [] for name in pages}
            errors: dict[str, int] = {}
            before = await indexed_count(engine, run_id)
            print(f"{args.clients} clients for {args.duration:.0f} s ...", flush=True)
            until = time.monotonic() + args.duration
            ingest = asyncio.create_task(
                produce(
                    bootstrap, run_id, args.seed_records + args.backlog,
                    int(args.ingest_rate * args.duration), args.ingest_rate,
                )
            )  # fmt: skip
            await asyncio.gather(
                *(client_loop(client, pages, until, timings, errors) for _ in range(args.clients))
            )
            after = await indexed_count(engine, run_id)
            ingest.cancel()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        engine.dispose()
    rows: list[tuple[str, str]] = []
    everything = [t for values in timings.values() for t in values]
    for name, values in timings.items():
        if values:
            rows.append(
                (f"console {name}",
                 f"p50 {statistics.median(values):.0f} ms, p95 {percentile(values, 0.95):.0f} ms, "
                 f"{len(values)} requests, {errors.get(name, 0)} errors")
            )  # fmt: skip
    rows.append(
        (f"console all pages, {args.clients} clients",
         f"p50 {statistics.median(everything):.0f} ms, p95 {percentile(everything, 0.95):.0f} ms, "
         f"{len(everything) / args.duration:.0f} requests/s, {sum(errors.values())} errors")
    )  # fmt: skip
    rows.append(
        ("console ingest meanwhile", f"{(after - before) / args.duration:,.0f} events/s indexed")
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--seed-records", type=int, default=50_000)
    parser.add_argument("--ingest-rate", type=float, default=2_000.0)
    parser.add_argument("--index-url", default="")
    parser.add_argument(
        "--backlog", type=int, default=0,
        help="records produced beyond the seed before the console starts: the collector is "
        "still indexing them at its full rate while the clients measure",
    )  # fmt: skip
    parser.add_argument(
        "--separate", action="store_true",
        help="the console and the collector as two processes (eventscope console, collect)",
    )  # fmt: skip
    parser.add_argument("--summary", help="also write the result rows to this JSON file")
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    report("console latency", rows, args.summary)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
