"""The index writer, in a process of its own.

Why a process: Python's sqlite3 module releases the GIL around each row's insert and takes
it back for the next row's parameters. With the consumer and the normalizer busy in the
same process, every one of those hand-backs waits for the other threads to let go of the
GIL, so the writer crawls (the "convoy effect") and two cores do the work of one. In a
process of its own the writer has a GIL to itself and the two halves really overlap.

The protocol is one request, one answer over a pipe: the tap sends a batch (row tuples in
EVENT_COLUMNS order, next offsets, time) and waits for ("ok", inserted) or ("error", text).
The child commits the rows, the hooks' work and the positions in one transaction
(collectors/index/writer.py), so exactly-once holds whichever side dies when: a batch
whose answer never came is consumed again and ON CONFLICT DO NOTHING drops what had
committed. The child exits when the pipe closes, including when its parent is killed.
It is a plain `python -m` process rather than a multiprocessing one: spawning through
multiprocessing re-imports the parent's main module (the whole console) in the child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from collectors.index.writer import BatchHook, EventTuple, PositionKey, write_batch

log = logging.getLogger("eventscope.writer")

STOP_TIMEOUT_S = 10.0


class WriterProcessError(RuntimeError):
    """The writer process failed the batch (the message says why) or is gone."""


def _serve(requests: Connection, answers: Connection) -> None:
    """The child's loop: write each batch received, answer, exit when the pipe closes."""
    from collectors.index.engine import create_index_engine

    url, cluster, hooks = requests.recv()
    engine = create_index_engine(url)
    try:
        while True:
            try:
                request = requests.recv()
            except (EOFError, OSError):
                return
            if request is None:
                return
            rows, next_offsets, now_ms = request
            try:
                inserted = write_batch(engine, cluster, rows, next_offsets, now_ms, hooks)
            except Exception as exc:
                answer: tuple[str, Any] = ("error", f"{type(exc).__name__}: {exc}"[:1000])
            else:
                answer = ("ok", inserted)
            try:
                answers.send(answer)
            except OSError:
                return
    finally:
        engine.dispose()


def main() -> None:
    """Entry point of the child (`python -m collectors.index.writer_process`).

    The parent stops it by closing the pipe, so the terminal's Ctrl-C and a service
    manager's SIGTERM (sent to the whole process group) are left to the parent: the batch
    in hand still commits. stdin carries requests; answers go to a private copy of stdout,
    and stdout itself is pointed at stderr so that a stray print cannot break the protocol.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers_fd = os.dup(1)
    os.dup2(2, 1)
    _serve(Connection(0, writable=False), Connection(answers_fd, readable=False))


class WriterProcess:
    """A child process that writes batches to the index; `write` blocks until committed.

    Call `write` from one thread at a time (the tap's writer thread). A child that died is
    started again on the next write.
    """

    def __init__(self, url: str, cluster: str, hooks: Sequence[BatchHook] = ()) -> None:
        self.url = url
        self.cluster = cluster
        self.hooks = list(hooks)
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._answers: Connection | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> tuple[Connection, Connection]:
        process = subprocess.Popen(
            [sys.executable, "-m", "collectors.index.writer_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert process.stdin is not None and process.stdout is not None
        requests = Connection(os.dup(process.stdin.fileno()), readable=False)
        answers = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()
        self._process, self._requests, self._answers = process, requests, answers
        requests.send((self.url, self.cluster, self.hooks))
        return requests, answers

    def write(
        self,
        rows: Sequence[EventTuple],
        next_offsets: Mapping[PositionKey, int],
        now_ms: int,
    ) -> int:
        """Send one batch and wait until it has committed; return the rows inserted."""
        with self._lock:
            if self._requests is None or self._answers is None or not self._alive():
                self._discard()
                self._start()
            assert self._requests is not None and self._answers is not None
            try:
                self._requests.send((list(rows), dict(next_offsets), now_ms))
                status, value = self._answers.recv()
            except (EOFError, OSError) as exc:
                self._discard()
                raise WriterProcessError(f"the writer process is gone ({exc!r})") from exc
        if status != "ok":
            raise WriterProcessError(str(value))
        return int(value)

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _close_pipes(self) -> None:
        for connection in (self._requests, self._answers):
            if connection is not None:
                connection.close()
        self._requests = self._answers = None

    def _discard(self) -> None:
        self._close_pipes()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(STOP_TIMEOUT_S)
            self._process = None

    def close(self) -> None:
        """Ask the child to finish (it ends after the batch in hand) and wait for it."""
        with self._lock:
            if self._requests is not None:
                with contextlib.suppress(OSError):
                    self._requests.send(None)
            self._close_pipes()
            if self._process is not None:
                try:
                    self._process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log.warning("writer process did not stop in %.0f s; killing it", STOP_TIMEOUT_S)
                    self._process.kill()
                    self._process.wait(STOP_TIMEOUT_S)
                self._process = None


if __name__ == "__main__":
    main()
