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
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from collectors.index.writer import BatchHook, EventTuple, PositionKey, write_batch

log = logging.getLogger("eventscope.writer")

_CONTEXT = multiprocessing.get_context("spawn")  # no fork: the parent runs threads and a loop
STOP_TIMEOUT_S = 10.0


class WriterProcessError(RuntimeError):
    """The writer process failed the batch (the message says why) or is gone."""


def _serve(connection: Connection, url: str, cluster: str, hooks: Sequence[BatchHook]) -> None:
    """The child's loop: write each batch received, answer, exit when the pipe closes."""
    from collectors.index.engine import create_index_engine

    engine = create_index_engine(url)
    try:
        while True:
            try:
                request = connection.recv()
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
                connection.send(answer)
            except (BrokenPipeError, OSError):
                return
    finally:
        engine.dispose()


class WriterProcess:
    """A child process that writes batches to the index; `write` blocks until committed.

    Call `write` from one thread at a time (the tap's writer thread). A child that died is
    started again on the next write.
    """

    def __init__(self, url: str, cluster: str, hooks: Sequence[BatchHook] = ()) -> None:
        self.url = url
        self.cluster = cluster
        self.hooks = list(hooks)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> Connection:
        parent_end, child_end = _CONTEXT.Pipe(duplex=True)
        process = _CONTEXT.Process(
            target=_serve,
            args=(child_end, self.url, self.cluster, self.hooks),
            name=f"eventscope-writer[{self.cluster}]",
            daemon=True,
        )
        process.start()
        child_end.close()  # only the child holds it now: its death closes our end
        self._process, self._connection = process, parent_end
        return parent_end

    def write(
        self,
        rows: Sequence[EventTuple],
        next_offsets: Mapping[PositionKey, int],
        now_ms: int,
    ) -> int:
        """Send one batch and wait until it has committed; return the rows inserted."""
        with self._lock:
            connection = self._connection
            if connection is None or self._process is None or not self._process.is_alive():
                self._discard()
                connection = self._start()
            try:
                connection.send((list(rows), dict(next_offsets), now_ms))
                status, value = connection.recv()
            except (EOFError, OSError) as exc:
                self._discard()
                raise WriterProcessError(f"the writer process is gone ({exc!r})") from exc
        if status != "ok":
            raise WriterProcessError(str(value))
        return int(value)

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(STOP_TIMEOUT_S)
            self._process = None

    def close(self) -> None:
        """Ask the child to finish (it ends after the batch in hand) and wait for it."""
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(OSError):
                    self._connection.send(None)
                self._connection.close()
                self._connection = None
            if self._process is not None:
                self._process.join(STOP_TIMEOUT_S)
                if self._process.is_alive():
                    log.warning("writer process did not stop in %.0f s; killing it", STOP_TIMEOUT_S)
                    self._process.kill()
                    self._process.join(STOP_TIMEOUT_S)
                self._process = None
