"""/healthz on a port of its own, answered by a thread: liveness that a flood of requests
on the console's port cannot delay.

On the console's port, /healthz waits behind every request the event loop is parsing,
refusing or serving: under 2,000 concurrent requests its p99 was 1-2 s, and a liveness
probe with a 1 s timeout would restart a console that was merely busy. Here a small HTTP
server in a thread answers it at once. It does not simply say "alive": the event loop
stamps a heartbeat every HEARTBEAT_S, and /healthz answers 503 when that stamp is older
than `server.loop_stall_s`, so a wedged loop is reported, while a loop that is busy but
turning is not. The body gives the loop's lag either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("eventscope.health")

HEARTBEAT_S = 0.25


class HealthListener:
    """A background service (start/stop) serving GET /healthz on `host:port`."""

    name = "health-listener"

    def __init__(self, host: str, port: int, stall_s: float) -> None:
        self.host, self.port, self.stall_s = host, port, stall_s
        self.last_beat = time.monotonic()
        self._beating: asyncio.Task[None] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.running = False

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The status and body of /healthz now (read from the listener's thread)."""
        lag = max(0.0, time.monotonic() - self.last_beat - HEARTBEAT_S)
        if lag >= self.stall_s:
            body = {"status": "stalled", "loop_lag_s": round(lag, 3),
                    "error": f"the event loop has not turned for {lag:.1f} s"}  # fmt: skip
            return 503, body
        return 200, {"status": "ok", "loop_lag_s": round(lag, 3)}

    async def start(self) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/healthz":
                    status, body = 404, {"error": "only /healthz is served on this port"}
                else:
                    status, body = listener.answer()
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would fill the log

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        server.timeout = 5
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="health-listener", daemon=True
        )
        self._thread.start()
        self._beating = asyncio.create_task(self._beat(), name="health-heartbeat")
        self.running = True
        log.info("/healthz also on http://%s:%d/healthz", self.host, self.port)

    async def _beat(self) -> None:
        while True:
            self.last_beat = time.monotonic()
            await asyncio.sleep(HEARTBEAT_S)

    async def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()
        self.running = False
