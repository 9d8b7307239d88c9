"""What the benchmarks share: a broker when none is given, free ports, result summaries.

Each benchmark prints its own table and, with `--summary FILE`, writes its result rows as
JSON so that `bench/run.py` can gather every benchmark into one table.
"""

from __future__ import annotations

import atexit
import json
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scratch_dir(prefix: str = "eventscope-bench-") -> Path:
    """A temporary folder for a benchmark's index files, removed when the benchmark exits
    (a 1M-event index is over a gigabyte)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def start_local_broker() -> str:
    """Start eventscope's local Apache Kafka on a free port; return its bootstrap address.

    The broker keeps running after the benchmark (stop it with `eventscope kafka stop
    --data-dir DIR`, the folder is printed).
    """
    from collectors.kafka.local_broker import LocalBroker, start

    data_dir = Path(tempfile.mkdtemp(prefix="eventscope-bench-kafka-"))
    broker = LocalBroker(data_dir=data_dir, port=free_port())
    start(broker)
    print(f"started a local broker at {broker.bootstrap} (data in {data_dir})", flush=True)
    return broker.bootstrap


def report(benchmark: str, rows: Sequence[tuple[str, str]], summary: str | None) -> None:
    """Print the result rows as a table, and write them to `summary` when given."""
    width = max(len(name) for name, _ in rows)
    print(f"\n{'measure'.ljust(width)}  result")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    if summary:
        write_summary(summary, benchmark, rows)


def write_summary(path: str | Path, benchmark: str, rows: Sequence[tuple[str, str]]) -> None:
    document = {"benchmark": benchmark, "rows": [[name, value] for name, value in rows]}
    Path(path).write_text(json.dumps(document, indent=2))


def read_summary(path: str | Path) -> list[tuple[str, str]]:
    document = json.loads(Path(path).read_text())
    return [(str(name), str(value)) for name, value in document.get("rows", [])]
