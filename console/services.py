"""Background services share one lifecycle: start in order, stop in reverse.

Receivers start before senders and stop after them (the coordinator pattern of Burrow):
the order of the list given to `ServiceGroup` is the start order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger("eventscope.services")


class Service(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ServiceGroup:
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
                await asyncio.wait_for(service.stop(), timeout=30)

    def status(self) -> dict[str, bool]:
        return {service.name: service in self._started for service in self.services}
