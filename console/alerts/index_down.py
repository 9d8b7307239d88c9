"""The one notification that does not go through the index: the index itself is down.

Alerts live in the index: their state, their groups, the outbox the delivery worker sends
from. When the index cannot be written (PostgreSQL down, the disk full) no alert can be
recorded, least of all the one that says so. The evaluator then notifies the receivers it
read last, directly: "EventscopeIndexUnavailable" firing once its passes have failed for
`after_s`, and resolved after the first pass that succeeds again. Each is tried once per
pass until the receiver accepts it, with one webhook id per outage and status (receivers
drop repeats). Nothing is stored: a restart during an outage may notify it once more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from console.alerts.delivery import AttemptResult, post
from console.alerts.settings import Receiver
from console.alerts.webhook_format import AlertInstance, build_webhook_body, encode_body

log = logging.getLogger("eventscope.alerts")

ALERT_NAME = "EventscopeIndexUnavailable"
AFTER_S = 30.0

Post = Callable[[httpx.AsyncClient, Receiver, str, bytes, float], Awaitable[AttemptResult]]


@dataclass
class _Outage:
    started_at: float
    error: str = ""
    ended_at: float | None = None
    receivers: set[str] = field(default_factory=set)  # told it fires / still to tell it ended


class IndexDownNotifier:
    def __init__(
        self,
        external_url: str,
        after_s: float = AFTER_S,
        clock: Callable[[], float] = time.time,
        send: Post = post,
    ) -> None:
        self.external_url = external_url.rstrip("/")
        self.after_s = after_s
        self.clock = clock
        self.send = send
        self.receivers: dict[str, Receiver] = {}  # as of the last pass that read them
        self.outage: _Outage | None = None  # now
        self.ended: _Outage | None = None  # over, its end not yet told to every receiver

    async def pass_failed(self, error: str) -> None:
        now = self.clock()
        if self.outage is None:
            self.outage, self.ended = _Outage(now), None
        outage = self.outage
        outage.error = error
        if now - outage.started_at >= self.after_s:
            waiting = {n: r for n, r in self.receivers.items() if n not in outage.receivers}
            outage.receivers |= await self._notify(waiting, "firing", outage)

    async def pass_succeeded(self, receivers: Mapping[str, Receiver]) -> None:
        self.receivers = dict(receivers)
        if self.outage is not None:
            if self.outage.receivers:
                self.outage.ended_at = self.clock()
                self.ended = self.outage
            self.outage = None
        ended = self.ended
        if ended is not None:
            waiting = {n: r for n, r in self.receivers.items() if n in ended.receivers}
            ended.receivers -= await self._notify(waiting, "resolved", ended)
            ended.receivers &= set(self.receivers)  # a receiver removed meanwhile
            if not ended.receivers:
                self.ended = None

    async def _notify(
        self, receivers: Mapping[str, Receiver], status: str, outage: _Outage
    ) -> set[str]:
        """Send to each receiver once; return the names of those that accepted."""
        if not receivers:
            return set()
        alert = AlertInstance(
            labels={"alertname": ALERT_NAME, "severity": "critical"},
            annotations={
                "summary": "eventscope cannot write its index: alerts cannot be recorded",
                "description": outage.error[:1000],
            },
            starts_at=datetime.fromtimestamp(outage.started_at, tz=UTC),
            ends_at=(
                datetime.fromtimestamp(outage.ended_at, tz=UTC)
                if outage.ended_at is not None
                else None
            ),
            generator_url=f"{self.external_url}/readyz",
            status=status,
        )
        webhook_id = f"msg_index_down_{int(outage.started_at * 1000)}_{status}"
        accepted = set()
        async with httpx.AsyncClient(follow_redirects=False) as client:
            for name, receiver in receivers.items():
                body = build_webhook_body(
                    receiver=name, group_labels={"alertname": ALERT_NAME}, alerts=[alert],
                    external_url=self.external_url,
                )  # fmt: skip
                result = await self.send(
                    client, receiver, webhook_id, encode_body(body), self.clock()
                )
                if result.ok:
                    accepted.add(name)
                    log.warning("told receiver %s that the index is %s", name,
                                "unavailable" if status == "firing" else "back")  # fmt: skip
                else:
                    log.warning("receiver %s did not take the index-%s notification: %s",
                                name, status, result.error)  # fmt: skip
        return accepted
