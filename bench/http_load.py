"""The HTTP edge under load and abuse, on loopback (issue 26).

    python bench/http_load.py [--events 1000000] [--index-file PATH]
        [--scenarios search,crowd,slow,body] [--searches 200] [--crowd 2000]
        [--slow 50,2000] [--body-mb 400] [--timeout 60] [--source DIR] [--server 'KEY = VALUE']
        [--server-nofile N] [--health-port]

A real `eventscope console` (SQLite index of `--events` rows filled the look-up
benchmark's way, auth on, API tokens) is started afresh for each scenario, so that one
scenario's leftovers never slow the next and each has its own peak RSS:

- search: `--searches` concurrent `GET /api/events?text=<customer id>` (each id is in the
  payload of one record in 2,000, so a search reads ~100,000 of the newest rows);
- crowd: `--crowd` concurrent requests of the same kind;
- slow: connections that send one header line every 3 s and never finish their headers
  (50, then 2,000 if the file-descriptor limit allows), watched for 30 s;
- body: one `POST /api/actions` streamed (chunked) with `--body-mb` MB of JSON.

Throughout each scenario `/healthz` is requested every 100 ms on a fresh connection, from
an event loop of its own (in a thread), so that the client's load does not delay it.
Prints p50/p95/p99 per route, answers by status (`timeout` for no answer within
`--timeout`, `reset` for a closed connection), `/healthz` p99 and the server's peak RSS.
Every request has a deadline and every scenario a bounded count, so a run ends.
`--source DIR` serves another checkout's code (to measure a commit before a change).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, report, scratch_dir  # noqa: E402

HOST = "127.0.0.1"
CUSTOMERS = 2_000  # the filler's templates: customer c-<n> for n below this
HEALTHZ_EVERY_S = 0.1
SLOW_LINE_EVERY_S = 3.0
SLOW_WATCH_S = 30.0
BODY_CHUNK = 1 << 20


@dataclass
class Answers:
    """Latencies by route and answers by status, of one scenario."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )

    by_status: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )

    def add(self, route: str, status: str, seconds: float) -> None:
        self.statuses[route][status] += 1
        self.latencies[route].append(seconds)
        self.by_status[(route, status)].append(seconds)


async def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: AsyncIterator[bytes] | None = None,
    timeout: float,
) -> tuple[str, float]:
    """One request on a fresh connection: (status or `timeout`/`reset`, seconds)."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port)
            lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
            if body is not None:
                lines.append("Transfer-Encoding: chunked")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            if body is not None:
                answer = asyncio.ensure_future(reader.readline())
                try:
                    async for chunk in body:
                        if answer.done():  # the server answered before the body ended
                            break
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await writer.drain()
                    else:
                        writer.write(b"0\r\n\r\n")
                except ConnectionError:  # the server answered and closed: read its answer
                    pass
                status_line = await answer
            else:
                status_line = await reader.readline()
            if not status_line:
                return "reset", time.perf_counter() - started
            status = status_line.split()[1].decode()
            await reader.read()  # until the server closes (Connection: close)
            return status, time.perf_counter() - started
    except TimeoutError:
        return "timeout", time.perf_counter() - started
    except (ConnectionError, OSError, IndexError):
        return "reset", time.perf_counter() - started
    finally:
        if writer is not None:
            writer.close()


async def sample_healthz(
    port: int, answers: Answers, stop: threading.Event, route: str = "/healthz"
) -> None:
    """/healthz every HEALTHZ_EVERY_S on a fresh connection until `stop`."""
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        status, seconds = await request(port, "/healthz", timeout=10)
        answers.add(route, status, seconds)

    while not stop.is_set():
        task = asyncio.create_task(one())
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(HEALTHZ_EVERY_S)
    await asyncio.gather(*pending)


async def sample_aside(
    samplers: list[tuple[int, str]], answers: Answers, stop: threading.Event
) -> None:
    """The /healthz samplers on an event loop of their own, in a thread: the scenario's
    thousands of client connections keep this process's main loop busy, and a sample
    sharing it would time that loop, not the server."""

    async def all_of_them() -> None:
        await asyncio.gather(
            *(sample_healthz(port, answers, stop, route) for port, route in samplers)
        )

    await asyncio.to_thread(asyncio.run, all_of_them())


class RssWatch:
    """The server's resident memory, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start_mb = self.now_mb()
        self.peak_mb = self.start_mb
        self._task = asyncio.create_task(self._watch())

    def now_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    async def _watch(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self.now_mb())
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._task.cancel()


class Server:
    """`eventscope console` on a free port, from `source`, on the prepared index."""

    def __init__(
        self,
        source: Path,
        index_url: str,
        work: Path,
        server: list[str],
        nofile: int | None,
        health_port: bool = False,
    ) -> None:
        self.port = free_port()
        self.health_port = free_port() if health_port else None
        config = work / "console.toml"
        extra = "".join(f"{line}\n" for line in server)
        if self.health_port:
            extra += f"health_port = {self.health_port}\n"
        config.write_text(
            f'[server]\nhost = "{HOST}"\nport = {self.port}\n{extra}[index]\nurl = "{index_url}"\n'
        )
        env = {**os.environ, "PYTHONPATH": str(source)}
        self.log = (work / "console.log").open("ab")
        command = [sys.executable, "-m", "console.cli", "--config", str(config), "console"]

        def limit_files() -> None:  # as `ulimit -n` would, in the server's process only
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.process = subprocess.Popen(
            command, cwd=work, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=limit_files,
        )  # fmt: skip

    async def ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited ({self.process.returncode}); see its log")
            status, _ = await request(self.port, "/healthz", timeout=2)
            if status == "200":
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("the console did not answer /healthz")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def prepare_index(path: Path, events: int) -> tuple[str, str, str]:
    """The index at `path` filled to `events` rows; (url, viewer token, operator token)."""
    from sqlalchemy import func, select

    from bench.ingest import fill_index
    from collectors.index import migrate
    from collectors.index.engine import create_index_engine
    from collectors.index.models import events_table
    from console.stores import auth as auth_store

    url = f"sqlite:///{path}"
    engine = create_index_engine(url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        have = connection.execute(select(func.count()).select_from(events_table)).scalar_one()
    if have < events:
        print(f"filling the index to {events:,} events ({path})", flush=True)
        fill_index(engine, events, "load")
    _, viewer = auth_store.create_token(engine, "bench-viewer", "viewer", "bench")
    _, operator = auth_store.create_token(engine, "bench-operator", "operator", "bench")
    engine.dispose()
    return url, viewer, operator


def search_path() -> str:
    return f"/api/events?text=c-{random.randrange(CUSTOMERS)}%22"


async def concurrent_searches(
    port: int, count: int, token: str, answers: Answers, timeout: float
) -> None:
    headers = {"Authorization": f"Bearer {token}"}

    async def one() -> None:
        status, seconds = await request(port, search_path(), headers=headers, timeout=timeout)
        answers.add("/api/events?text=", status, seconds)

    await asyncio.gather(*(one() for _ in range(count)))


async def single_search_s(port: int, token: str, timeout: float) -> float:
    """Median of five searches one at a time: what one search costs on its own."""
    times = []
    for _ in range(5):
        status, seconds = await request(
            port, search_path(), headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        if status == "200":
            times.append(seconds)
    return statistics.median(times) if times else float("nan")


async def slow_headers(port: int, count: int, answers: Answers) -> dict[str, float]:
    """`count` connections that never finish their headers: how many the server closed,
    and when; meanwhile new clients are served (the /healthz sampler)."""
    closed_after: list[float] = []
    opened = 0

    async def one() -> None:
        nonlocal opened
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            answers.add("slow connection", "refused", 0)
            return
        opened += 1
        try:
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n".encode())
            line = 0
            deadline = started + SLOW_WATCH_S
            while time.perf_counter() < deadline:
                try:
                    data = await asyncio.wait_for(reader.read(1024), SLOW_LINE_EVERY_S)
                    seconds = time.perf_counter() - started
                    if not data or data.startswith(b"HTTP/1.1 408"):  # closed by the server
                        closed_after.append(seconds)
                        answers.add(
                            "slow connection", "closed (408)" if data else "closed", seconds
                        )
                        return
                    answers.add("slow connection", "answered", seconds)
                    return
                except TimeoutError:
                    line += 1
                    writer.write(f"X-Slow-{line}: still typing\r\n".encode())
                    await writer.drain()
            answers.add("slow connection", "open at the end", time.perf_counter() - started)
        except (ConnectionError, OSError):
            closed_after.append(time.perf_counter() - started)
            answers.add("slow connection", "closed", time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    closed = sorted(closed_after)
    return {
        "opened": opened,
        "closed": len(closed),
        "closed p50 s": statistics.median(closed) if closed else float("nan"),
    }


class JsonBody:
    """A JSON object of about `total_mb` MB, in 1 MB chunks; counts what was taken."""

    def __init__(self, total_mb: int) -> None:
        self.total_mb = total_mb
        self.sent_mb = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        yield b'{"kind": "replay", "note": "'
        for _ in range(self.total_mb):
            yield b"a" * BODY_CHUNK
            self.sent_mb += 1
        yield b'"}'


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def figures(times: list[float]) -> str:
    return (
        f"p50 {percentile(times, 0.5) * 1000:,.0f} ms, "
        f"p95 {percentile(times, 0.95) * 1000:,.0f} ms, "
        f"p99 {percentile(times, 0.99) * 1000:,.0f} ms"
    )


def route_rows(scenario: str, answers: Answers) -> list[tuple[str, str]]:
    """Per route: latencies of all answers, then of each status when there are several."""
    rows = []
    for route in sorted(answers.latencies):
        found = answers.statuses[route]
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(found.items()))
        rows.append((f"{scenario}: {route}", f"{figures(answers.latencies[route])}; {statuses}"))
        if len(found) > 1:
            for status in sorted(found):
                times = answers.by_status[(route, status)]
                rows.append((f"{scenario}: {route} [{status}]", figures(times)))
    return rows


async def run_scenario(
    name: str, args: argparse.Namespace, source: Path, index: tuple[str, str, str], work: Path
) -> list[tuple[str, str]]:
    url, viewer, operator = index
    server = Server(source, url, work, args.server, args.server_nofile, args.health_port)
    try:
        await server.ready()
        answers = Answers()
        rows: list[tuple[str, str]] = []
        if name == "search":
            single = await single_search_s(server.port, viewer, args.timeout)
            rows.append(("search: one search alone (median of 5)", f"{single * 1000:,.0f} ms"))
        rss = RssWatch(server.process.pid)
        stop = threading.Event()
        samplers = [(server.port, "/healthz")]
        if server.health_port:
            samplers.append((server.health_port, "/healthz (health port)"))
        sampler = asyncio.create_task(sample_aside(samplers, answers, stop))
        began = time.perf_counter()
        if name == "search":
            await concurrent_searches(server.port, args.searches, viewer, answers, args.timeout)
        elif name == "crowd":
            await concurrent_searches(server.port, args.crowd, viewer, answers, args.timeout)
        elif name.startswith("slow"):
            count = int(name.removeprefix("slow-"))
            found = await slow_headers(server.port, count, answers)
            closed = f"{found['closed']} of {found['opened']}"
            rows.append((f"{name}: closed by the server",
                         f"{closed}, median after {found['closed p50 s']:.1f} s"))  # fmt: skip
        elif name == "body":
            headers = {"Authorization": f"Bearer {operator}", "Content-Type": "application/json"}
            body = JsonBody(args.body_mb)
            status, seconds = await request(
                server.port, "/api/actions", method="POST", headers=headers,
                body=body.chunks(), timeout=args.timeout,
            )  # fmt: skip
            answers.add(f"POST /api/actions ({args.body_mb} MB, chunked)", status, seconds)
            rows.append((f"{name}: body sent before the answer (or reset)",
                         f"{body.sent_mb} MB"))  # fmt: skip
        wall = time.perf_counter() - began
        stop.set()
        await sampler
        rss.stop()
        rows += route_rows(name, answers)
        rows.append((f"{name}: wall", f"{wall:.1f} s"))
        rows.append((f"{name}: server RSS start / peak",
                     f"{rss.start_mb:,.0f} / {rss.peak_mb:,.0f} MB"))  # fmt: skip
        return rows
    finally:
        server.stop()


def scenario_names(args: argparse.Namespace) -> list[str]:
    names = []
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    for name in args.scenarios.split(","):
        if name != "slow":
            names.append(name)
            continue
        for count in (int(n) for n in args.slow.split(",")):
            if count + 100 > soft:
                print(f"skipping {count} slow connections: this process may open {soft} files")
                continue
            names.append(f"slow-{count}")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--index-file", help="an index to fill (or reuse if filled)")
    parser.add_argument("--scenarios", default="search,crowd,slow,body")
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--crowd", type=int, default=2000)
    parser.add_argument("--slow", default="50,2000")
    parser.add_argument("--body-mb", type=int, default=400)
    parser.add_argument("--timeout", type=float, default=60, help="seconds a request may take")
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to serve")
    parser.add_argument(
        "--server", action="append", default=[], metavar="KEY=VALUE",
        help="a [server] setting for the console, as TOML (e.g. 'search_queue = 4'); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--server-nofile", type=int, help="the server's open-files limit (soft and hard)"
    )
    parser.add_argument(
        "--health-port", action="store_true",
        help="give the console a health port (server.health_port) and sample /healthz there too",
    )  # fmt: skip
    parser.add_argument("--summary")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = scratch_dir("eventscope-http-load-")
    index_file = Path(args.index_file) if args.index_file else work / "index.db"
    index = prepare_index(index_file.resolve(), args.events)
    rows: list[tuple[str, str]] = []
    for name in scenario_names(args):
        print(f"scenario {name} ...", flush=True)
        rows += asyncio.run(run_scenario(name, args, args.source.resolve(), index, work))
    report("http_load", rows, args.summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
