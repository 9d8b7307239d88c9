"""The outbox worker: POST each notification to its receiver until it is delivered.

Rows of ``alert_outbox`` are claimed with a lease (their ``next_attempt_at_ms`` is moved
forward in a conditional update), so two workers never send the same attempt and a worker
that dies mid-send only delays it. Every attempt is one ``alert_deliveries`` row: HTTP
status, latency, error, outcome. console/alerts/retry_policy.py decides what happens next:
2xx delivered; 5xx, 408, 429 and network errors retried with exponential backoff and jitter,
``Retry-After`` honoured; 410 Gone fails the notification and disables the receiver; any
other status fails it. Retrying stops when the notification is older than the policy's
``max_age_s`` (a day by default), so a receiver down for an hour loses nothing.

The body is sent exactly as stored; with a secret it is signed per Standard Webhooks, with
the same ``webhook-id`` on every retry so that receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, update

from collectors.index.alert_models import alert_deliveries_table, alert_outbox_table
from collectors.services import PeriodicService
from console.alerts.retry_policy import NextStep, Outcome, RetryPolicy, after_attempt
from console.alerts.settings import Receiver
from console.alerts.signing import signature_headers
from console.alerts.webhook_format import AlertInstance, build_webhook_body, encode_body
from console.stores.alerts import load_receivers, set_receiver_enabled

log = logging.getLogger("eventscope.alerts.delivery")

USER_AGENT = "eventscope-alerts"
CLAIM_BATCH = 20
CONCURRENCY = 8
LEASE_EXTRA_MS = 30_000
MAX_ERROR = 500


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    error: str | None
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code <= 299


async def post(
    client: httpx.AsyncClient, receiver: Receiver, webhook_id: str, body: bytes, now_s: float
) -> AttemptResult:
    """One HTTP attempt; never raises for network trouble (it is reported in the result)."""
    headers = dict(receiver.headers)
    headers["content-type"] = "application/json"
    headers["user-agent"] = USER_AGENT
    if receiver.secret:
        headers |= signature_headers(receiver.secret, webhook_id, int(now_s), body)
    else:
        headers["webhook-id"] = webhook_id
    started = time.perf_counter()
    try:
        response = await client.post(
            receiver.url, content=body, headers=headers, timeout=receiver.timeout_s
        )
    except httpx.TimeoutException:
        timeout_error = f"timed out after {receiver.timeout_s:g} s"
        return AttemptResult(None, _elapsed_ms(started), timeout_error, None)
    except httpx.HTTPError as exc:
        network_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        return AttemptResult(None, _elapsed_ms(started), network_error, None)
    latency = _elapsed_ms(started)
    error: str | None = None
    if not 200 <= response.status_code <= 299:
        snippet = response.text[:200].strip() if response.content else ""
        error = f"HTTP {response.status_code}{': ' + snippet if snippet else ''}"[:MAX_ERROR]
    return AttemptResult(response.status_code, latency, error, response.headers.get("retry-after"))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def log_attempt(
    engine: Engine,
    *,
    outbox_id: int | None,
    receiver: str,
    webhook_id: str,
    attempt: int,
    at_ms: int,
    result: AttemptResult,
    outcome: str,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(alert_deliveries_table).values(
                outbox_id=outbox_id,
                receiver=receiver,
                webhook_id=webhook_id,
                attempt=attempt,
                attempted_at_ms=at_ms,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                outcome=outcome,
                error=result.error,
            )
        )


class DeliveryWorker(PeriodicService):
    """Background service: sends what the evaluator put in the outbox."""

    name = "alert-delivery"

    def __init__(
        self,
        engine: Engine,
        policy: RetryPolicy,
        poll_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.policy = policy
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.retry_s = self.max_backoff_s = poll_interval_s  # the outbox keeps what waits
        self.client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self.client = httpx.AsyncClient(follow_redirects=False)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def wake(self) -> None:
        """Look at the outbox now (after the evaluator enqueued something)."""
        self._wake.set()

    async def step(self) -> float:
        await self.run_once()
        return self.poll_interval_s

    async def pause(self, seconds: float) -> None:
        """Until the poll interval is over, or until `wake`."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def run_once(self) -> int:
        """Attempt every due notification once; returns how many attempts were made."""
        client = self.client
        if client is None:
            raise RuntimeError("the delivery worker is not started")
        claimed, receivers = await asyncio.to_thread(self._claim)
        limit = asyncio.Semaphore(CONCURRENCY)

        async def attempt(row: Any) -> None:
            async with limit:
                await self._attempt(client, row, receivers.get(row.receiver))

        await asyncio.gather(*(attempt(row) for row in claimed))
        return len(claimed)

    def _claim(self) -> tuple[list[Any], dict[str, Receiver]]:
        now_ms = int(self.clock() * 1000)
        c = alert_outbox_table.c
        with self.engine.begin() as connection:
            receivers = {
                name: stored.receiver for name, stored in load_receivers(connection).items()
            }
            due = connection.execute(
                select(alert_outbox_table)
                .where(c.state == "pending", c.next_attempt_at_ms <= now_ms)
                .order_by(c.next_attempt_at_ms, c.id)
                .limit(CLAIM_BATCH)
            ).all()
        claimed = []
        for row in due:
            receiver = receivers.get(row.receiver)
            timeout_ms = int((receiver.timeout_s if receiver else 10) * 1000)
            with self.engine.begin() as connection:
                result = connection.execute(
                    update(alert_outbox_table)
                    .where(
                        c.id == row.id,
                        c.state == "pending",
                        c.next_attempt_at_ms == row.next_attempt_at_ms,
                    )
                    .values(next_attempt_at_ms=now_ms + timeout_ms + LEASE_EXTRA_MS)
                )
            if result.rowcount == 1:
                claimed.append(row)
        return claimed, receivers

    async def _attempt(
        self, client: httpx.AsyncClient, row: Any, receiver: Receiver | None
    ) -> None:
        now = self.clock()
        if receiver is None or not receiver.enabled:
            why = "receiver removed" if receiver is None else "receiver disabled"
            await asyncio.to_thread(self._finish, row, "failed", why, int(now * 1000))
            return
        result = await post(client, receiver, row.webhook_id, row.body.encode("utf-8"), now)
        done = self.clock()
        attempt = int(row.attempts) + 1
        step = after_attempt(
            self.policy,
            status=result.status_code,
            error=result.error,
            retry_after=result.retry_after,
            attempt=attempt,
            first_attempt_at=datetime.fromtimestamp(row.created_at_ms / 1000, tz=UTC),
            now=datetime.fromtimestamp(done, tz=UTC),
        )
        await asyncio.to_thread(self._record, row, receiver, attempt, now, result, step)

    def _record(
        self,
        row: Any,
        receiver: Receiver,
        attempt: int,
        at_s: float,
        result: AttemptResult,
        step: NextStep,
    ) -> None:
        at_ms = int(at_s * 1000)
        log_attempt(
            self.engine,
            outbox_id=row.id,
            receiver=receiver.name,
            webhook_id=row.webhook_id,
            attempt=attempt,
            at_ms=at_ms,
            result=result,
            outcome=str(step.outcome),
        )
        values: dict[str, Any] = {"attempts": attempt, "last_error": result.error}
        now_ms = int(self.clock() * 1000)
        if step.outcome is Outcome.RETRY:
            values |= {"next_attempt_at_ms": now_ms + int((step.delay_s or 0) * 1000)}
        else:
            values |= {
                "state": "delivered" if step.outcome is Outcome.DELIVERED else "failed",
                "finished_at_ms": now_ms,
            }
        with self.engine.begin() as connection:
            connection.execute(
                update(alert_outbox_table).where(alert_outbox_table.c.id == row.id).values(**values)
            )
            if step.outcome is Outcome.GONE:
                when = datetime.fromtimestamp(at_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
                reason = f"answered 410 Gone at {when}"
                set_receiver_enabled(connection, receiver.name, False, reason, now_ms)

    def _finish(self, row: Any, state: str, error: str, now_ms: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(alert_outbox_table)
                .where(alert_outbox_table.c.id == row.id)
                .values(state=state, last_error=error, finished_at_ms=now_ms)
            )


async def send_test(engine: Engine, receiver: Receiver, external_url: str) -> AttemptResult:
    """One immediate, logged attempt with a test alert (the "Send test" button)."""
    now = time.time()
    moment = datetime.fromtimestamp(now, tz=UTC)
    labels = {"alertname": "EventscopeTest", "severity": "info", "receiver": receiver.name}
    alert = AlertInstance(
        labels=labels,
        annotations={"summary": "Test notification from eventscope"},
        starts_at=moment,
        ends_at=None,
        generator_url=external_url.rstrip("/") + "/alerts/receivers",
        status="firing",
    )
    body = build_webhook_body(
        receiver=receiver.name,
        group_labels={"alertname": "EventscopeTest"},
        alerts=[alert],
        external_url=external_url,
    )
    webhook_id = f"msg_test_{uuid.uuid4().hex}"
    async with httpx.AsyncClient(follow_redirects=False) as client:
        result = await post(client, receiver, webhook_id, encode_body(body), now)
    outcome = "delivered" if result.ok else "failed"
    await asyncio.to_thread(
        log_attempt,
        engine,
        outbox_id=None,
        receiver=receiver.name,
        webhook_id=webhook_id,
        attempt=1,
        at_ms=int(now * 1000),
        result=result,
        outcome=outcome,
    )
    return result
