"""The HTTP server's limits, set on purpose rather than left to uvicorn's defaults.

- A request head (request line and headers) must arrive within `server.header_timeout_s`
  of the connection opening, or of the request's first byte on a kept-alive connection.
  uvicorn has no such timeout: a client sending a header line every few seconds held its
  connection, and its file descriptor, forever, and 1,100 of them made the console fail
  with "Too many open files". `SlowClientProtocol` closes them (with a 408), and a
  request whose body stops arriving for that long.
- At most `server.max_connections` connections, kept below the file-descriptor limit: one
  more closes the connection that has waited longest without a request in progress (idle,
  or still sending its head), or, when every connection has one, is answered 503 and
  closed at once, before it holds a descriptor for long.
- Heads are capped at MAX_HEAD_BYTES (h11 answers 400 beyond), idle kept-alive connections
  closed after KEEP_ALIVE_S, and the soft RLIMIT_NOFILE raised to the hard limit at start.

`server_config` builds the uvicorn configuration for the console and the OTLP listener.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from collectors.config import ServerConfig

log = logging.getLogger("eventscope.http")

KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this long
BACKLOG = 2048  # connections the kernel queues before the server accepts them
MAX_HEAD_BYTES = 16 * 1024  # a request line and headers beyond this are a 400
FD_RESERVE = 256  # descriptors kept for the index, Kafka clients, logs and static files
FD_TARGET_WHEN_UNLIMITED = 65_536
BODY_CHECK_EVERY_S = 1.0  # how often a request body still arriving is looked at


def _plain_answer(status: str, text: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, written before any request."""
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}", "connection: close", *headers]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


REQUEST_TIMEOUT = _plain_answer("408 Request Timeout", "the request head took too long\n")
TOO_MANY_CONNECTIONS = _plain_answer(
    "503 Service Unavailable", "too many connections now\n", "retry-after: 1"
)


class SlowClientProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections beyond the cap, connections whose
    request head is late (408), and requests whose body stops arriving for as long.
    Configured by `limited_protocol`.

    The head has a deadline from its first byte (or the connection's opening): a client
    sending a header line every few seconds must not keep it open. A body has a limit on
    each gap instead, so that a large upload on a slow line goes through; time when the
    server is not reading (flow control, or an unanswered `Expect: 100-continue`) does not
    count.
    """

    client_timeout_s: float = 10.0
    max_connections: int = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch: asyncio.TimerHandle | None = None
        self._head_started: float | None = None
        self._last_data = 0.0
        self._waiting_since = 0.0  # opened, or answered its last request

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = self._last_data = self._waiting_since = self.loop.time()
        if len(self.connections) > self.max_connections and not self._make_room():
            log.warning("refused a connection: %d open (server.max_connections is %d)",
                        len(self.connections) - 1, self.max_connections)  # fmt: skip
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        self._watch_in(self.client_timeout_s)

    def _make_room(self) -> bool:
        """Close the connection that has waited longest without a request in progress (idle
        kept-alive, or a head still arriving), as nginx reuses idle connections: a new
        client, who sends its request at once, is served before a slow one. False when
        every other connection has a request in progress."""
        waiting = [
            other for other in self.connections
            if isinstance(other, SlowClientProtocol) and other is not self
            and other.conn.their_state is h11.IDLE and not other.transport.is_closing()
        ]  # fmt: skip
        if not waiting:
            return False
        quietest = min(waiting, key=lambda other: other._waiting_since)
        if quietest._head_started is not None:  # part of a head had arrived
            quietest.transport.write(REQUEST_TIMEOUT)
        quietest.transport.close()
        return True

    def data_received(self, data: bytes) -> None:
        now = self._last_data = self.loop.time()
        if self._head_started is None and self.conn.their_state is h11.IDLE:
            self._head_started = now  # a new request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._head_started = None
        if self._watch is None and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._watch_in(BODY_CHECK_EVERY_S)

    def on_response_complete(self) -> None:
        self._waiting_since = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def _watch_in(self, seconds: float) -> None:
        self._watch = self.loop.call_later(max(seconds, 0.01), self._check)

    def _check(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        now, state = self.loop.time(), self.conn.their_state
        if state is h11.IDLE and self._head_started is not None:
            left = self._head_started + self.client_timeout_s - now
            if left <= 0:
                log.warning("closed a connection that sent no complete request head within "
                            "%g s (server.header_timeout_s)", self.client_timeout_s)  # fmt: skip
                self.transport.write(REQUEST_TIMEOUT)
                self.transport.close()
                return
            self._watch_in(left)
        elif state is h11.SEND_BODY:
            cycle = self.cycle
            if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
                self._last_data = now  # the client waits for the server
            elif now - self._last_data >= self.client_timeout_s:
                log.warning("closed a connection whose request body stopped arriving for "
                            "%g s (server.header_timeout_s)", self.client_timeout_s)  # fmt: skip
                self.transport.close()  # the application sees the client disconnect
                return
            self._watch_in(min(BODY_CHECK_EVERY_S, self.client_timeout_s))


def limited_protocol(client_timeout_s: float, max_connections: int) -> type[SlowClientProtocol]:
    """The protocol class uvicorn builds each connection with, with these limits."""
    limits = {"client_timeout_s": client_timeout_s, "max_connections": max_connections}
    return type("LimitedSlowClientProtocol", (SlowClientProtocol,), limits)


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one (no privilege needed); the soft
    limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_TARGET_WHEN_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return FD_TARGET_WHEN_UNLIMITED if soft == resource.RLIM_INFINITY else soft


def connection_cap(max_connections: int, fd_limit: int) -> int:
    """`max_connections`, lowered so that connections never use the last descriptors."""
    return max(1, min(max_connections, fd_limit - FD_RESERVE))


def server_config(
    app: Any, server: ServerConfig, host: str, port: int, **extra: Any
) -> uvicorn.Config:
    """uvicorn's configuration with the limits above; `extra` passes other settings."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    fd_limit = FD_TARGET_WHEN_UNLIMITED if soft == resource.RLIM_INFINITY else soft
    cap = connection_cap(server.max_connections, fd_limit)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=limited_protocol(server.header_timeout_s, cap),
        # uvicorn's own limit counts connections too, and would answer 503 to the new
        # client the cap just made room for; requests in flight are bounded by the cap
        # anyway (one at a time per connection).
        limit_concurrency=None,
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        proxy_headers=False,
        **extra,
    )
