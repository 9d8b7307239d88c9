"""A real HTTP receiver on 127.0.0.1 for delivery tests: records every request and answers
with a scripted sequence of statuses (the last one repeats)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    answers: list[tuple[int, dict[str, str]]]
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            time.sleep(0.02)
        return self.requests


@contextmanager
def webhook_receiver(
    statuses: Sequence[int | tuple[int, dict[str, str]]] = (200,), delay_s: float = 0.0
) -> Iterator[WebhookReceiver]:
    answers = [s if isinstance(s, tuple) else (s, {}) for s in statuses]
    state = WebhookReceiver("", answers, delay_s)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with lock:
                index = len(state.requests)
                state.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, headers = state.answers[min(index, len(state.answers) - 1)]
            if state.delay_s:
                time.sleep(state.delay_s)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
