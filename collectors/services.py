"""Background services: one lifecycle for all of them.

Every service is configured by its constructor (a bad configuration raises there, and the
composition root, console/composition.py, builds every service before it starts any: a
process never runs half its services), started in order and stopped in reverse by a
`ServiceGroup` (receivers start before senders and stop after them: Burrow's coordinator),
and reports its `status`: whether it runs, when it last did its work, and its last error.

`PeriodicService` is the loop most of them are: one `step` after another, the step telling
how long to wait before the next; a failed step is logged and recorded, and the next one is
tried after a back-off that doubles from `retry_s` up to `max_backoff_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, NotRequired, Protocol

from typing_extensions import TypedDict

log = logging.getLogger("eventscope.services")

MAX_ERROR_CHARS = 500
STOP_TIMEOUT_S = 30.0


class ServiceStatus(TypedDict):
    running: bool
    last_success_ms: int | None  # when it last did its work
    last_error: str | None  # cleared by the next success
    last_error_ms: int | None
    errors: int  # since start
    partitions: NotRequired[list[str]]  # the tap's: the topic:partition pairs it reads now


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> ServiceStatus: ...


class Health:
    """What a service reports: its last success and its last error."""

    def __init__(self) -> None:
        self.running = False
        self.last_success_ms: int | None = None
        self.last_error: str | None = None
        self.last_error_ms: int | None = None
        self.errors = 0

    def succeeded(self) -> None:
        self.last_success_ms = int(time.time() * 1000)
        self.last_error = None

    def failed(self, error: BaseException | str) -> str:
        """Record the error (an exception, or what to say of it); return its description."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.last_error = text[:MAX_ERROR_CHARS]
        self.last_error_ms = int(time.time() * 1000)
        self.errors += 1
        return self.last_error

    def status(self) -> ServiceStatus:
        return ServiceStatus(
            running=self.running,
            last_success_ms=self.last_success_ms,
            last_error=self.last_error,
            last_error_ms=self.last_error_ms,
            errors=self.errors,
        )


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a service's loop task and wait until it has ended (None: nothing to do).

    The loop logs and records its own errors; what it raises while being cancelled is of
    no use to the caller that is stopping it.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class PeriodicService:
    """A service whose work is one `step` after another (subclasses write `step`)."""

    name: str = "service"
    first_delay_s = 0.0  # before the first step
    retry_s = 1.0  # the first wait after a failed step; it doubles while steps fail
    max_backoff_s = 300.0

    def __init__(self) -> None:
        self.health = Health()
        self._task: asyncio.Task[None] | None = None

    async def step(self) -> float:
        """Do one round of work; return how many seconds to wait before the next."""
        raise NotImplementedError

    async def on_error(self, exc: Exception) -> None:
        """Clean up after a failed step (close clients that may be broken)."""

    async def pause(self, seconds: float) -> None:
        """Wait between steps (a service that can be woken early overrides this)."""
        await asyncio.sleep(seconds)

    async def start(self) -> None:
        self.health.running = True
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.health.running = False

    def status(self) -> ServiceStatus:
        return self.health.status()

    @property
    def last_error(self) -> str | None:
        return self.health.last_error

    async def _run(self) -> None:
        delay, backoff = self.first_delay_s, 0.0
        while True:
            await self.pause(delay)
            try:
                delay = await self.step()
                self.health.succeeded()
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never crash the process: record, back off, retry
                log.warning("%s failed: %s", self.name, self.health.failed(exc))
                with contextlib.suppress(Exception):
                    await self.on_error(exc)
                backoff = min(max(backoff * 2, self.retry_s), self.max_backoff_s)
                delay = backoff


class ServiceGroup:
    """Start in the given order, stop in reverse; a failed start stops what had started."""

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self._started: list[Service] = []

    async def start(self) -> None:
        for service in self.services:
            log.info("starting %s", service.name)
            try:
                await service.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(service)

    async def stop(self) -> None:
        while self._started:
            service = self._started.pop()
            log.info("stopping %s", service.name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(service.stop(), timeout=STOP_TIMEOUT_S)

    def status(self) -> dict[str, ServiceStatus]:
        return {service.name: service.status() for service in self.services}

    def problems(self, now: float) -> list[str]:
        """What keeps records from the index now, from the services that can tell."""
        found = []
        for service in self.services:
            check = getattr(service, "pipeline_problem", None)
            problem = check(now) if check is not None else None
            if problem:
                found.append(problem)
        return found
