"""Every benchmark in one run, on the local broker, with one table at the end.

    python bench/run.py [--bootstrap HOST:PORT] [--pg-url postgresql+psycopg://...]
        [--quick] [--only ingest,writer,lag,redrive,console,lineage,http,formats,partitioning]

Without --bootstrap it starts eventscope's local Apache Kafka broker. With --pg-url the
ingest and look-up figures are taken on PostgreSQL too. --quick runs small sizes (a few
minutes, to check that the benchmarks work); the full sizes are the ones reported in
docs/benchmarks.md and take about an hour on a 2-core machine, most of it filling the
index to 10 million events for the look-ups.

Each benchmark runs as its own process (its figures are not disturbed by the others) and
writes its rows to a summary file; this script prints the machine and the rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import read_summary, scratch_dir, start_local_broker  # noqa: E402

BENCH = ROOT / "bench"


def plan(args: argparse.Namespace, bootstrap: str) -> dict[str, list[str]]:
    """The command line of each benchmark, full or quick sizes."""
    quick = args.quick
    backends = "sqlite,postgresql" if args.pg_url else "sqlite"
    ingest = [
        "ingest.py", "--bootstrap", bootstrap, "--backends", backends,
        "--records", "100000" if quick else "1000000",
        "--lookup-sizes", "200000" if quick else "1000000,10000000",
    ]  # fmt: skip
    if args.pg_url:
        ingest += ["--pg-url", args.pg_url]
    commands = {
        "ingest": ingest,
        "writer": ["writer.py", "--rows", "100000" if quick else "1000000"],
        "lag": [
            "lag_sampling.py", "--bootstrap", bootstrap,
            "--groups", "50" if quick else "500", "--partitions", "50",
            "--interval", "10", "--duration", "20" if quick else "60",
        ],
        "redrive": [
            "redrive.py", "--bootstrap", bootstrap, "--records", "10000" if quick else "50000",
        ],
        "console": [
            "console_latency.py", "--bootstrap", bootstrap, "--clients", "20",
            "--duration", "10" if quick else "30",
            "--seed-records", "10000" if quick else "50000",
        ],
        "lineage": ["lineage.py", "--runs", "3" if quick else "7"],
        "http": [
            "http_load.py", "--events", "100000" if quick else "1000000",
            "--crowd", "500" if quick else "2000", "--body-mb", "50" if quick else "400",
        ],
        # decoding cost per format; it starts a local schema registry (Java 21+)
        "formats": ["formats.py", "--records", "5000" if quick else "20000"],
    }  # fmt: skip
    if args.pg_url:  # migration 0014 on an index made before partitioning
        commands["partitioning"] = [
            "partitioning.py", "--pg-url", args.pg_url,
            "--rows", "100000" if quick else "1000000",
        ]  # fmt: skip
    return commands


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap")
    parser.add_argument("--pg-url", default=os.environ.get("EVENTSCOPE_BENCH_PG_URL"))
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    bootstrap = args.bootstrap or start_local_broker()
    commands = plan(args, bootstrap)
    chosen = [name for name in args.only.split(",") if name] or list(commands)
    unknown = sorted(set(chosen) - set(commands))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(commands)}")
    work = scratch_dir("eventscope-bench-run-")
    results: list[tuple[str, str, str]] = []
    for name in chosen:
        summary = work / f"{name}.json"
        command = [sys.executable, str(BENCH / commands[name][0]), *commands[name][1:]]
        command += ["--summary", str(summary)]
        print(f"\n== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        finished = subprocess.run(command, cwd=ROOT, check=False)
        took = time.monotonic() - started
        if finished.returncode != 0 or not summary.exists():
            results.append((name, "failed", f"exit code {finished.returncode} after {took:.0f} s"))
            continue
        results.extend((name, measure, value) for measure, value in read_summary(summary))
    print(f"\nmachine: {machine()}")
    print(f"broker: {bootstrap}\n")
    widths = [max(len(row[i]) for row in results) for i in range(2)]
    for bench, measure, value in results:
        print(f"{bench.ljust(widths[0])}  {measure.ljust(widths[1])}  {value}")
    return 0 if all(row[1] != "failed" for row in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
