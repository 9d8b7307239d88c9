"""Take the user guide's screenshots from the demo shop's traffic.

    .venv/bin/python scripts/screenshots.py [--bootstrap HOST:PORT] [--schema-registry URL]
        [--connect URL] [--out docs/screenshots]

Starts a local Kafka broker, schema registry and Kafka Connect worker in a temporary folder
(unless --bootstrap, --schema-registry and --connect name running ones), the console on a
temporary SQLite index and the demo shop with two file sink connectors (one whose task
fails: its file's folder is missing), waits until every page has
something to show (console/demo/tour.py), and saves each page in Debian's Chromium at
1440x900 (OUT/NAME.png, the ones the guide shows) and at 390x844 (OUT/narrow/NAME.png),
in the light theme, and again in the dark one (OUT/dark/NAME.png, OUT/dark/narrow/NAME.png).
Run it again whenever a page changes, and commit the pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
from playwright.async_api import async_playwright

from collectors.config import ConnectConfig
from collectors.kafka import local_broker, local_connect
from collectors.schemas import local_registry
from console import assets
from console.demo import tour
from console.demo.flows import with_faults
from console.operations.connect_client import ConnectClient, ConnectError
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
# folder under OUT: (width, height, colour scheme)
VIEWS: dict[str, tuple[int, int, Literal["light", "dark"]]] = {
    "": (1440, 900, "light"),
    "narrow": (390, 844, "light"),
    "dark": (1440, 900, "dark"),
    "dark/narrow": (390, 844, "dark"),
}


@contextlib.contextmanager
def _broker(bootstrap: str | None, scratch: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    broker = local_broker.LocalBroker(data_dir=scratch / "kafka", port=free_port(span=2))
    local_broker.start(broker)
    try:
        yield broker.bootstrap
    finally:
        local_broker.stop(broker)


@contextlib.contextmanager
def _registry(url: str | None, scratch: Path) -> Iterator[str]:
    if url:
        yield url
        return
    registry = local_registry.LocalRegistry(scratch / "registry", port=free_port(span=2))
    local_registry.start(registry)
    try:
        yield registry.url
    finally:
        local_registry.stop(registry)


@contextlib.contextmanager
def _connect(url: str | None, bootstrap: str, scratch: Path) -> Iterator[str]:
    if url:
        yield url
        return
    worker = local_connect.LocalConnect(scratch / "connect", bootstrap, port=free_port())
    local_connect.start(worker)
    try:
        yield worker.url
    finally:
        local_connect.stop(worker)


async def _connectors(connect_url: str, topic: str, scratch: Path) -> str:
    """An archive of the orders that runs, and an export whose task fails; its name."""
    failing = f"{topic.split('.')[0]}-orders-export"
    async with ConnectClient(ConnectConfig(name="connect", url=connect_url)) as client:
        for name, file in ((f"{topic.split('.')[0]}-orders-archive", scratch / "orders.txt"),
                           (failing, scratch / "missing" / "orders.txt")):  # fmt: skip
            await client.put_config(name, {
                "connector.class": "FileStreamSink", "topics": topic, "file": str(file),
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": f"{topic}.connect-dlq",
                "errors.deadletterqueue.topic.replication.factor": "1",
                "errors.deadletterqueue.context.headers.enable": "true",
            })  # fmt: skip
        for _ in range(120):
            with contextlib.suppress(ConnectError):  # no status yet, just after its creation
                tasks = (await client.status(failing)).get("tasks") or []
                if any(task.get("state") == "FAILED" for task in tasks):
                    return failing
            await asyncio.sleep(0.5)
    raise RuntimeError(f"the connector {failing} never failed")


async def _tour(
    bootstrap: str, registry: str, connect: str, scratch: Path, out: Path, prefix: str
) -> int:
    # Two of the demo's faults, so that the Event health page has findings to show.
    odds = with_faults(tour.TOUR_ODDS, ("duplicates", "stale-updates"))
    demo = tour.running_demo(bootstrap, scratch, prefix, free_port(), registry_url=registry,
                             connect_url=connect, odds=odds)  # fmt: skip
    async with demo as (url, shop):
        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            ids = await tour.wait_for_traffic(client, shop, prefix)
        connector = await _connectors(connect, shop.topics.orders, scratch)
        ids = dataclasses.replace(ids, connector=connector)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS)  # fmt: skip
            for folder, (width, height, scheme) in VIEWS.items():
                target = out / folder
                target.mkdir(parents=True, exist_ok=True)
                viewport = {"width": width, "height": height}
                page = await browser.new_page(viewport=viewport, color_scheme=scheme)
                for name, path, _ in tour.pages(ids):
                    await page.goto(url + path)
                    await page.wait_for_load_state("networkidle")
                    await page.screenshot(path=str(target / f"{name}.png"))
                    print(f"  {target / name}.png")
                await page.close()
            await browser.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="a running broker (default: start a local one)")
    parser.add_argument(
        "--schema-registry", help="a running registry's URL (default: start a local one)"
    )
    parser.add_argument(
        "--connect", help="a running Kafka Connect worker's URL (default: start a local one)"
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    problem = assets.ensure()
    if problem:
        print(f"screenshots: {problem}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="eventscope-guide-") as name:
        scratch = Path(name)
        # On a broker of its own the shop has the demo's names; elsewhere, names of its own.
        prefix = f"guide-{uuid.uuid4().hex[:6]}" if args.bootstrap else "shop"
        with (
            _broker(args.bootstrap, scratch) as bootstrap,
            _registry(args.schema_registry, scratch) as registry,
            _connect(args.connect, bootstrap, scratch) as connect,
        ):
            out = Path(args.out).absolute()
            return asyncio.run(_tour(bootstrap, registry, connect, scratch, out, prefix))


if __name__ == "__main__":
    raise SystemExit(main())
