"""Redrive benchmark: how many DLQ messages per second a redrive job moves with acks=all.

    python bench/redrive.py --bootstrap 127.0.0.1:9092 [--records 50000] [--value-bytes 500]
        [--index-url sqlite:///path]

Produces N Spring-style dead-letter records (~500-byte values, Spring's DLT headers) to a
fresh DLT topic, indexes them the collector's way, then times one redrive job of all of
them to the original topic (idempotent producer, acks=all) from the runner's claim to
the job's end, index bookkeeping included. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_dir, write_summary  # noqa: E402
from collectors.config import ClusterConfig  # noqa: E402
from collectors.index import migrate  # noqa: E402
from collectors.index.engine import create_index_engine  # noqa: E402
from console.actions.job_request import parse_request  # noqa: E402
from console.actions.runner import ActionRunner  # noqa: E402
from console.stores import jobs  # noqa: E402
from tests.console.actions.helpers import CLUSTER, index_topic, spring_headers  # noqa: E402
from tests.kafka_helpers import create_topic, produce  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    index_url = args.index_url or f"sqlite:///{scratch_dir()}/bench.db"
    engine = create_index_engine(index_url)
    migrate.upgrade(engine)
    base = f"bench-redrive-{uuid.uuid4().hex[:8]}"
    original, dlt = f"{base}-orders", f"{base}-orders-dlt"
    await create_topic(args.bootstrap, original)
    await create_topic(args.bootstrap, dlt)
    value = b"x" * args.value_bytes
    records = [
        (str(i).encode(), value, spring_headers(original, 0, i)) for i in range(args.records)
    ]
    await produce(args.bootstrap, dlt, records)
    await index_topic(engine, args.bootstrap, dlt, args.records)
    request = parse_request({"kind": "redrive", "filter": {"topic": dlt}}, [CLUSTER])
    started = time.perf_counter()
    job_id = jobs.create_job(engine, request, "bench", None)
    created = time.perf_counter()
    runner = ActionRunner(engine, [ClusterConfig(name=CLUSTER, bootstrap=args.bootstrap)])
    job = runner.claim_next()
    assert job is not None and job["id"] == job_id
    await runner.run(job)
    finished = time.perf_counter()
    view = jobs.get_job(engine, job_id)
    assert view is not None and view["sent"] == args.records, view
    backend = engine.dialect.name
    print(
        f"records                {args.records:,} x {args.value_bytes} B values, backend {backend}"
    )
    print(f"create job (items)     {created - started:.2f} s")
    print(f"run (read, send, ack)  {finished - created:.2f} s")
    print(f"redrive rate           {args.records / (finished - created):,.0f} msg/s (acks=all)")
    print(f"end to end             {args.records / (finished - started):,.0f} msg/s")
    if args.summary:
        write_summary(args.summary, "redrive", [(
            f"redrive {args.records:,} x {args.value_bytes} B ({backend})",
            f"{args.records / (finished - created):,.0f} msg/s with acks=all",
        )])  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--value-bytes", type=int, default=500)
    parser.add_argument("--index-url")
    parser.add_argument("--summary", help="also write the result rows to this JSON file")
    asyncio.run(main(parser.parse_args()))
