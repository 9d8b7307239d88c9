"""The index writer, in a process of its own.

Why a process: Python's sqlite3 module releases the GIL around each row's insert and takes
it back for the next row's parameters. With the consumer and the normalizer busy in the
same process, every one of those hand-backs waits for the other threads to let go of the
GIL, so the writer crawls (the "convoy effect") and two cores do the work of one. In a
process of its own the writer has a GIL to itself and the two halves really overlap.

The protocol is requests and answers over a pipe, in order. ("add", rows, next offsets,
time) adds a batch (row tuples in EVENT_COLUMNS order) to the child's open transaction and
("commit",) commits it (group commit, collectors/index/writer.BatchWriter); each gets
("ok", rows newly committed) or ("error", text). The parent sends the next batch before
reading the previous answer, so the child never waits for the parent to pickle it.
On SQLite, when no request waits, the child has the hooks flush what they collected
(BatchWriter.prepare): their work is then done while the parent reads and normalises the
next batches instead of all at the commit, which the parent waits for. A failure there is
the answer to the next request.
Rows, the hooks' work and the positions commit together, so exactly-once holds whichever
side dies when: what was not committed is consumed again from the stored positions and
ON CONFLICT DO NOTHING drops what had committed. After an error everything added since
the last commit is gone, and the child refuses every request until the parent sends
("reset",): a batch already on its way cannot commit positions past the lost ones.
The child exits when the pipe closes, including when its parent is killed.
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
from typing import Any, NoReturn

from collectors.index.event_row import EventTuple
from collectors.index.writer import BatchHook, BatchWriter, PositionKey

log = logging.getLogger("eventscope.writer")

STOP_TIMEOUT_S = 10.0


class WriterProcessError(RuntimeError):
    """The writer process failed the batch (the message says why) or is gone."""


def _serve(requests: Connection, answers: Connection) -> None:
    """The child's loop: serve each request, answer, exit when the pipe closes."""
    from collectors.index.engine import create_index_engine

    url, cluster, hooks = requests.recv()
    engine = create_index_engine(url)
    writer = BatchWriter(engine, cluster, hooks)
    failed = False  # a request or an idle flush failed: refuse everything until a reset
    failure: str | None = None  # what an idle flush raised, for the next answer to tell
    prepared = True  # the hooks' work for what was added is done
    try:
        while True:
            if not prepared and not requests.poll():
                # Nothing to serve: do the hooks' work for the open transaction now rather
                # than at its commit, while the parent is busy reading the next batches.
                prepared = True
                try:
                    writer.prepare()
                except Exception as exc:
                    failed, failure = True, _describe(exc)
                continue
            try:
                request = requests.recv()
            except (EOFError, OSError):
                return
            if request is None:
                return
            answer: tuple[str, Any]
            if request[0] == "reset":
                failed, failure, answer = False, None, ("ok", 0)
            elif failed:
                answer = ("error", failure or "refused: an earlier request failed")
                failure = None
            else:
                try:
                    if request[0] == "add":
                        answer = ("ok", writer.add(*request[1:]))
                        prepared = not (writer.pending_rows and writer.flushes_ahead)
                    else:
                        answer = ("ok", writer.commit())
                except Exception as exc:
                    failed, answer = True, ("error", _describe(exc))
            try:
                answers.send(answer)
            except OSError:
                return
    finally:
        writer.rollback()  # what the parent did not ask to commit is read again
        engine.dispose()


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


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
    """A BatchWriter in a child process: `add` and `commit` block until the child answers.

    Call them from one thread at a time (the tap's writer thread). When the child has died,
    the next request fails with WriterProcessError (what it had not committed is lost with
    it) and the one after starts a new child.
    """

    def __init__(self, url: str, cluster: str, hooks: Sequence[BatchHook] = ()) -> None:
        self.url = url
        self.cluster = cluster
        self.hooks = list(hooks)
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._answers: Connection | None = None
        self._unanswered = 0  # requests sent whose answer was not read yet
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

    def add(
        self,
        rows: Sequence[EventTuple],
        next_offsets: Mapping[PositionKey, int],
        now_ms: int,
    ) -> int:
        """Send one batch for the open transaction and return without waiting for it.

        Returns the rows newly committed by the requests answered meanwhile (a transaction
        that reached its size commits by itself). Raises WriterProcessError when an earlier
        request failed: everything added since the last commit is then gone.
        """
        with self._lock:
            self._send(("add", list(rows), dict(next_offsets), now_ms))
            return self._collect(keep=1)

    def commit(self) -> int:
        """Commit the open transaction and wait; return the rows newly committed."""
        with self._lock:
            self._send(("commit",))
            return self._collect(keep=0)

    def _send(self, request: tuple[Any, ...]) -> None:
        if self._process is not None and not self._alive():
            code = self._process.returncode
            self._discard()
            raise WriterProcessError(
                f"the writer process exited ({code}): what it had not committed is lost"
            )
        if self._process is None:
            self._start()
        assert self._requests is not None
        try:
            self._requests.send(request)
        except OSError as exc:
            self._gone(exc)
        self._unanswered += 1

    def _collect(self, keep: int) -> int:
        """Read answers until `keep` are outstanding; the first error is raised after the
        child was told to reset."""
        committed = 0
        error: str | None = None
        assert self._answers is not None
        while self._unanswered > keep or (error is not None and self._unanswered):
            try:
                status, value = self._answers.recv()
            except (EOFError, OSError) as exc:
                self._gone(exc)
            self._unanswered -= 1
            if status == "ok":
                committed += int(value)
            elif error is None:
                error = str(value)
        if error is not None:
            self._send(("reset",))
            self._collect(keep=0)
            raise WriterProcessError(error)
        return committed

    def _gone(self, exc: BaseException) -> NoReturn:
        self._discard()
        raise WriterProcessError(
            f"the writer process is gone ({exc!r}): what it had not committed is lost"
        ) from exc

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _close_pipes(self) -> None:
        for connection in (self._requests, self._answers):
            if connection is not None:
                connection.close()
        self._requests = self._answers = None
        self._unanswered = 0

    def _discard(self) -> None:
        self._close_pipes()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(STOP_TIMEOUT_S)
            self._process = None

    def close(self) -> None:
        """Ask the child to finish and wait for it; what was not committed is dropped."""
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
