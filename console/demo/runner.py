"""`eventscope demo`: broker, console and shop in one command, all stopped by one Ctrl-C.

1. Kafka: the broker named by --bootstrap (or EVENTSCOPE_KAFKA_BOOTSTRAP) is used as is and
   left alone; otherwise the local broker of `eventscope kafka start` is started (or reused
   when it already runs). Only a broker this command started is stopped at the end.
   The schema registry alike (--schema-registry, EVENTSCOPE_SCHEMA_REGISTRY_URL, else the
   local one of `eventscope registry start`), started beside the broker; if it cannot run
   (no Java 21), the demo goes on and the shop writes JSON only.
2. The console and its collectors, as `eventscope serve` runs them, on a SQLite index,
   bound to 127.0.0.1 with access control off, tapping the shop's topics.
3. The shop (shop.py), exporting its spans to the console's own `/v1/traces`; its payment
   commands are Avro through the registry.

On SIGINT or SIGTERM the shop stops first (its last spans still reach the console), then
the console, then the registry and the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from collectors.config import Settings, settings_from_mapping
from collectors.kafka import local_broker
from collectors.kafka.local_broker import BrokerError, LocalBroker
from collectors.local_process import port_is_free
from collectors.schemas import local_registry
from console.demo.flows import Odds, with_faults
from console.demo.shop import Shop

log = logging.getLogger("eventscope.demo")

DEFAULT_INDEX_URL = "sqlite:///eventscope-demo.db"
DEFAULT_PORT = 8600
DEFAULT_RATE = 2.0
CLUSTER_NAME = "demo"


class DemoError(RuntimeError):
    """Something the user can fix (the message says how)."""


@dataclass(frozen=True)
class DemoOptions:
    port: int = DEFAULT_PORT
    bootstrap: str | None = None
    index_url: str = DEFAULT_INDEX_URL
    rate: float = DEFAULT_RATE
    data_dir: Path | None = None
    kafka_port: int = local_broker.DEFAULT_PORT
    topic_prefix: str = "shop"
    seed: int | None = None
    faults: tuple[str, ...] = ()  # flows.FAULTS, off by default
    # Only the shop, against a running broker and console (docker-compose's demo profile).
    shop_only: bool = False
    traces_url: str | None = None
    schema_registry: str | None = None  # a registry's URL; None: the local one
    registry_port: int = local_registry.DEFAULT_PORT
    no_registry: bool = False  # JSON only


_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,59}")


def check_options(options: DemoOptions) -> None:
    if not 0 < options.port < 65536:
        raise DemoError(f"--port must be 1-65535, got {options.port}")
    if not 0 < options.rate <= 1000:
        raise DemoError(f"--rate must be more than 0 and at most 1000, got {options.rate}")
    if not _PREFIX.fullmatch(options.topic_prefix):
        raise DemoError("--topic-prefix: use 1-60 letters, digits, '-' and '_'")


def demo_settings(
    bootstrap: str,
    options: DemoOptions,
    registry_url: str | None = None,
    connect_url: str | None = None,
) -> Settings:
    """The console's settings: loopback without login, lag sampled every 2 s, shop topics only."""
    prefix = options.topic_prefix
    cluster: dict[str, object] = {"bootstrap": bootstrap, "include": [rf"{prefix}\..*"]}
    if registry_url is not None:
        cluster["schema_registry"] = {"url": registry_url}
    if connect_url is not None:
        cluster["connect"] = connect_url
    return settings_from_mapping({
        "server": {"host": "127.0.0.1", "port": options.port, "auth": "off"},
        "index": {"url": options.index_url},
        "clusters": {CLUSTER_NAME: cluster},
        # A collector group of its own: demos on a shared broker never split partitions.
        "collector": {"group_id": f"eventscope-{prefix}", "writer": "thread",
                      "batch_max_wait_ms": 100},
        "lag": {"interval_s": 2.0},
        # A named saga type, so that the sagas page can say what each saga is.
        "sagas": {"definitions": [{"name": "checkout", "first_event_type": "OrderPlaced",
                                   "final_event_types": ["OrderConfirmed"]}]},
        # Order events carry the order's version: the Event health page checks it per key.
        "event_health": {"sequences": [{"topic": f"{prefix}.orders", "field": "$.version"}]},
    })  # fmt: skip


def run(options: DemoOptions) -> int:
    """Run until SIGINT/SIGTERM; return the exit code."""
    check_options(options)
    if not port_is_free(options.port):
        raise DemoError(f"port {options.port} on 127.0.0.1 is in use; choose another with --port")
    if options.shop_only:
        bootstrap = options.bootstrap or os.environ.get("EVENTSCOPE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            raise DemoError("--shop-only needs a broker: --bootstrap HOST:PORT")
        asyncio.run(_shop_only(bootstrap, options))
        return 0
    _say("eventscope demo: a small shop on Kafka, watched by eventscope")
    with _registry(options) as registry_url, _kafka(options) as (bootstrap, whose, log_file):
        _say(f"  kafka    {bootstrap} ({whose})")
        if log_file is not None:
            _say(f"           its log: {log_file}")
        url = registry_url.result() if registry_url is not None else None
        if url is not None:
            _say(f"  registry {url}")
        asyncio.run(_serve(bootstrap, options, url))
    return 0


@contextlib.contextmanager
def _registry(options: DemoOptions) -> Iterator[_RegistryStart | None]:
    """The schema registry's URL, to be had from `.result()`: a configured one, or the local
    one started on a thread of its own (it takes as long as the broker, so they start
    side by side). None when the demo runs without one."""
    configured = options.schema_registry or os.environ.get("EVENTSCOPE_SCHEMA_REGISTRY_URL")
    if options.no_registry:
        yield None
        return
    if configured:
        yield _RegistryStart.ready(configured)
        return
    registry = local_registry.LocalRegistry(
        data_dir=(options.data_dir.parent / "registry") if options.data_dir
        else local_registry.default_data_dir(),
        port=options.registry_port,
    )  # fmt: skip
    already = local_registry.running_pid(registry) is not None
    starting = _RegistryStart(registry)
    try:
        yield starting
    finally:
        if not already and starting.started:
            _say("Stopping the schema registry ...")
            local_registry.stop(registry)


class _RegistryStart:
    """A local registry starting in the background; `result()` waits for its URL (None,
    with a warning, when it cannot run)."""

    def __init__(self, registry: local_registry.LocalRegistry | None, url: str | None = None):
        self.registry = registry
        self.url = url
        self.started = False
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        if registry is not None:
            self._thread = threading.Thread(target=self._start, daemon=True)
            self._thread.start()

    @classmethod
    def ready(cls, url: str) -> _RegistryStart:
        return cls(None, url)

    def _start(self) -> None:
        assert self.registry is not None
        try:
            local_registry.start(self.registry, quiet=True)
        except local_registry.RegistryStartError as exc:
            self._error = str(exc)
            return
        self.started = True
        self.url = self.registry.url

    def result(self) -> str | None:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            _say(f"  registry not started, the shop writes JSON only: {self._error}")
        return self.url


@contextlib.contextmanager
def _kafka(options: DemoOptions) -> Iterator[tuple[str, str, Path | None]]:
    """(bootstrap, whose broker it is, its log file if local); a broker started here is
    stopped on the way out."""
    configured = options.bootstrap or os.environ.get("EVENTSCOPE_KAFKA_BOOTSTRAP")
    if configured:
        yield configured, "configured; left alone", None
        return
    broker = LocalBroker(
        data_dir=options.data_dir or local_broker.default_data_dir(), port=options.kafka_port
    )
    if local_broker.running_pid(broker) is not None:
        local_broker.wait_until_ready(broker.bootstrap, local_broker.READY_TIMEOUT_S)
        yield broker.bootstrap, "already running; left running", broker.log_file
        return
    _say(
        f"Starting Apache Kafka {local_broker.KAFKA_VERSION} on {broker.bootstrap} "
        f"(data in {broker.data_dir}) ..."
    )
    try:
        local_broker.start(broker)
    except BrokerError as exc:
        raise DemoError(
            f"{exc}\n(or use a broker you already have: eventscope demo --bootstrap HOST:PORT)"
        ) from exc
    except BaseException:  # Ctrl-C while it starts: leave no Java process behind
        local_broker.stop(broker)
        raise
    try:
        yield broker.bootstrap, "started by the demo; stopped on exit", broker.log_file
    finally:
        _say("Stopping Kafka ...")
        local_broker.stop(broker)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops things in its own order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(bootstrap: str, options: DemoOptions, registry_url: str | None) -> None:
    from console.app import create_app

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    settings = demo_settings(bootstrap, options, registry_url)
    server = _Server(
        uvicorn.Config(create_app(settings, mode="all"), host="127.0.0.1", port=options.port,
                       log_level="warning", proxy_headers=False)
    )  # fmt: skip
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{options.port}"
    shop: Shop | None = None
    try:
        await _until_started(server, serving, stopping)
        if stopping.is_set():
            return
        shop = Shop(bootstrap, f"{url}/v1/traces", prefix=options.topic_prefix,
                    rate=options.rate, seed=options.seed, registry_url=registry_url,
                    odds=with_faults(Odds(), options.faults))  # fmt: skip
        try:
            await shop.start()
        except Exception as exc:
            shop = None  # it stopped what it had started
            raise DemoError(f"cannot run the shop on Kafka at {bootstrap}: {exc!r}") from exc
        _say(f"  console  {url}/")
        _say(f"  index    {options.index_url}")
        _say(f"  shop     {options.rate:g} orders/s on topics {options.topic_prefix}.*")
        if options.faults:
            _say(f"  faults   {', '.join(options.faults)} (see Health and Catalog)")
        _say("  The console and the shop log warnings here (-v for more).")
        _say("Press Ctrl-C to stop.")
        await _announce_first_order(shop, url, stopping)
        await stopping.wait()
    finally:
        _say("Stopping the shop and the console ...")
        if shop is not None:
            await shop.stop()
            _say(f"  shop: {shop.summary()}")
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await serving


async def _shop_only(bootstrap: str, options: DemoOptions) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    registry_url = (
        None
        if options.no_registry
        else (options.schema_registry or os.environ.get("EVENTSCOPE_SCHEMA_REGISTRY_URL"))
    )
    shop = Shop(bootstrap, options.traces_url, prefix=options.topic_prefix, rate=options.rate,
                seed=options.seed, registry_url=registry_url,
                odds=with_faults(Odds(), options.faults))  # fmt: skip
    try:
        await shop.start()
    except Exception as exc:
        raise DemoError(f"cannot run the shop on Kafka at {bootstrap}: {exc!r}") from exc
    spans = f"spans to {options.traces_url}" if options.traces_url else "spans sent nowhere"
    _say(f"eventscope demo shop: {options.rate:g} orders/s on {bootstrap}, topics "
         f"{options.topic_prefix}.*, {spans}. Ctrl-C stops it.")  # fmt: skip
    try:
        await stopping.wait()
    finally:
        await shop.stop()
        _say(f"  shop: {shop.summary()}")


async def _until_started(
    server: uvicorn.Server, serving: asyncio.Task[None], stopping: asyncio.Event
) -> None:
    while not server.started and not stopping.is_set():
        if serving.done():
            raise DemoError(f"the console could not start on port {server.config.port}")
        await asyncio.sleep(0.05)


async def _announce_first_order(shop: Shop, url: str, stopping: asyncio.Event) -> None:
    """Print the correlation id of the first order that made it through."""
    waiting: asyncio.Future[object] = asyncio.ensure_future(stopping.wait())
    first: asyncio.Future[object] = asyncio.ensure_future(shop.first_completed)
    try:
        await asyncio.wait({first, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if shop.first_completed.done():
        correlation_id = shop.first_completed.result()
        _say(f"First order through: correlation id {correlation_id}")
        _say(f"  {url}/trace/{correlation_id}")


def _say(text: str) -> None:
    print(text, flush=True)


def main_error(exc: DemoError) -> int:
    print(f"eventscope demo: {exc}", file=sys.stderr)
    return 1
