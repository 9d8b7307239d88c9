"""Lineage benchmark: a 500-node lineage graph, from the JSON endpoint to the drawn graph.

    python bench/lineage.py [--runs 7] [--noise 100000] [--index-url sqlite:///...]
        [--chromium /path/to/chromium]

1. Builds an index (a fresh SQLite file unless `--index-url` names an empty, migrated or
   migratable database) with one flow of 501 events: a root that fans out to 10 chains of
   10 events each, every chain event fanning out to 4 leaves, linked by causation ids, all
   sharing one correlation id (as real flows do), plus `--noise` unrelated events, some
   with correlation ids of their own.
2. Serves the console (uvicorn, in a thread) and times, `--runs` times each:
   - `lineage()` + JSON building in-process (the work the endpoint does),
   - GET /api/lineage/... over HTTP,
   - the lineage page in headless Chromium (Playwright) from navigation start to the graph
     drawn (the page sets `data-rendered` after the SVG's first painted frame), with the
     JSON fetch, build and paint times the page measures itself.
3. Prints best and median of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_dir, write_summary  # noqa: E402
from collectors import lineage  # noqa: E402
from collectors.config import settings_from_mapping  # noqa: E402
from collectors.index import migrate  # noqa: E402
from collectors.index.engine import create_index_engine  # noqa: E402
from collectors.index.writer import write_batch  # noqa: E402
from console.app import create_app  # noqa: E402
from console.views.lineage import graph_json  # noqa: E402

CLUSTER = "bench"
TOPIC = "bench-lineage"
CHAINS, CHAIN_LENGTH, LEAVES = 10, 10, 4
BATCH = 5_000


def event(topic: str, offset: int, ts_ms: int, **identity: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cluster": CLUSTER, "topic": topic, "partition": 0, "offset": offset,
        "timestamp_ms": ts_ms, "indexed_at_ms": ts_ms, "key": None, "key_hash": None,
        "value": b"{}", "value_size": 2, "value_truncated": False, "is_tombstone": False,
        "content_type": "json", "schema_id": None, "headers": "[]", "event_id": None,
        "event_type": None, "source": None, "correlation_id": None, "causation_id": None,
        "trace_id": None, "span_id": None, "saga_id": None, "is_dlq": False,
        "dlq_original_topic": None, "dlq_original_partition": None,
        "dlq_original_offset": None, "dlq_error_class": None, "dlq_error_message": None,
        "dlq_stacktrace": None, "dlq_attempts": None, "dlq_format": None,
    }  # fmt: skip
    row.update(identity)
    return row


def flow_rows(start_ms: int) -> list[dict[str, Any]]:
    """Root -> 10 chains of 10 -> 4 leaves per chain event: 501 events, depth 11."""
    rows = [event(TOPIC, 0, start_ms, event_id="root", correlation_id="flow-1",
                  event_type="OrderPlaced")]  # fmt: skip
    for chain in range(CHAINS):
        parent = "root"
        for step in range(CHAIN_LENGTH):
            event_id = f"c{chain}-{step}"
            rows.append(event(TOPIC, len(rows), start_ms + len(rows), event_id=event_id,
                              causation_id=parent, correlation_id="flow-1",
                              event_type=f"Step{step}"))  # fmt: skip
            for leaf in range(LEAVES):
                dead = leaf == 3 and step == 9  # the last leaf of each chain: a dead letter
                leaf_row = event(TOPIC, len(rows), start_ms + len(rows),
                                 event_id=f"{event_id}-l{leaf}", causation_id=event_id,
                                 correlation_id="flow-1", event_type="Notified", is_dlq=dead,
                                 dlq_original_topic=TOPIC if dead else None)  # fmt: skip
                rows.append(leaf_row)
            parent = event_id
    return rows


def build_index(url: str, noise: int) -> Any:
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    start_ms = int(time.time() * 1000) - 3_600_000
    write_batch(engine, CLUSTER, flow_rows(start_ms), {}, 0)
    for first in range(0, noise, BATCH):
        batch = [
            event("bench-noise", n, start_ms + n % 3_600_000, event_id=f"n{n}",
                  correlation_id=f"other-{n // 5}", causation_id=f"n{n - 1}" if n % 5 else None)
            for n in range(first, min(noise, first + BATCH))
        ]  # fmt: skip
        write_batch(engine, CLUSTER, batch, {}, 0)
    return engine


class Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


def serve(app: Any) -> tuple[Server, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def timed(action: Callable[[], Any], runs: int) -> list[float]:
    action()  # warm-up: caches, JIT of the query planner, imports
    figures = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        figures.append((time.perf_counter() - started) * 1000)
    return figures


async def browser_runs(url: str, runs: int, chromium: str) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    figures: dict[str, list[float]] = {"page": [], "fetch": [], "draw": [], "paint": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for run in range(runs + 1):
                context = await browser.new_context()
                page = await context.new_page()
                await page.goto(url)
                graph = page.locator("#lineage-graph[data-rendered='1']")
                await graph.wait_for(timeout=30_000)
                if run:  # the first load warms the server and the browser cache
                    figures["page"].append(float(await graph.get_attribute("data-done-ms") or 0))
                    figures["fetch"].append(float(await graph.get_attribute("data-fetch-ms") or 0))
                    figures["draw"].append(float(await graph.get_attribute("data-draw-ms") or 0))
                    figures["paint"].append(float(await graph.get_attribute("data-paint-ms") or 0))
                await context.close()
        finally:
            await browser.close()
    return figures


def line(name: str, values: list[float]) -> str:
    return f"| {name} | {min(values):.0f} | {statistics.median(values):.0f} | {len(values)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--noise", type=int, default=100_000)
    parser.add_argument("--index-url", default="")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--summary", help="also write the result rows to this JSON file")
    args = parser.parse_args()
    folder = scratch_dir()
    url = args.index_url or f"sqlite:///{folder}/index.db"
    print(f"building the index ({501 + args.noise} events) ...", flush=True)
    engine = build_index(url, args.noise)
    root = lineage.event_by_id(engine, 1)
    assert root is not None and root["event_id"] == "root"
    nodes = len(lineage.lineage(engine, root).nodes)
    print(f"lineage of the root: {nodes} nodes")

    settings = settings_from_mapping({"index": {"url": url}, "server": {"auth": "off"}})
    server, base = serve(create_app(settings, mode="console", engine=engine))
    path = f"/lineage/{CLUSTER}/{TOPIC}/0/0"
    try:
        in_process = timed(lambda: json.dumps(graph_json(lineage.lineage(engine, root))), args.runs)
        with httpx.Client(base_url=base, timeout=60) as client:
            over_http = timed(lambda: client.get("/api" + path).raise_for_status(), args.runs)
        browser = asyncio.run(browser_runs(base + path, args.runs, args.chromium))
    finally:
        server.should_exit = True
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(f"lineage of {nodes} nodes, {args.noise} other events, {engine.dialect.name} index")
    print("| measure (ms) | best | median | runs |")
    print("|---|---|---|---|")
    print(line("lineage() + JSON, in process", in_process))
    print(line("GET /api/lineage (HTTP, loopback)", over_http))
    print(line("page: navigation start -> graph drawn", browser["page"]))
    print(line("page: JSON fetch (measured by the page)", browser["fetch"]))
    print(line("page: SVG graph built (measured by the page)", browser["draw"]))
    print(line("page: built and first frame painted", browser["paint"]))
    if args.summary:
        http_ms, page_ms = statistics.median(over_http), statistics.median(browser["page"])
        write_summary(args.summary, "lineage", [
            (f"lineage {nodes} nodes: GET /api/lineage", f"median {http_ms:.0f} ms"),
            (f"lineage {nodes} nodes: page to graph painted", f"median {page_ms:.0f} ms"),
        ])  # fmt: skip


if __name__ == "__main__":
    main()
