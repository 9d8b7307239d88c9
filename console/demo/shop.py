"""The demo shop: five small services that talk over Kafka, instrumented like real ones.

Each service is a class with a consumer group, the topics it listens to and a `handle`
method; `ShopService` does the plumbing every real service has: it consumes, opens a
`process <topic>` span under the producer's trace context, and `emit`s CloudEvents with a
`send <topic>` span whose context travels in the `traceparent` header.

See flows.py for the story (saga, choreography, retries, dead letters) and the odds. The
five services are in this one module on purpose: the shop reads as one story.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from console.demo import messages
from console.demo.avro_payments import PaymentCodec
from console.demo.flows import (
    ORDER_VERSIONS,
    Dice,
    Odds,
    PaymentOutcome,
    SlowPace,
    Topics,
    basket_total_cents,
    next_checkout_step,
    retry_backoff_s,
)
from console.demo.messages import Envelope, FlowIds, Headers
from console.demo.telemetry import Telemetry, extract, inject

log = logging.getLogger("eventscope.demo")

GATEWAY_TIMEOUT_MS = 200
_TOPIC_ALREADY_EXISTS = 36


@dataclass
class Received:
    """A consumed record with its CloudEvents envelope and JSON data."""

    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope
    data: dict[str, Any]

    @property
    def key(self) -> str:
        return self.record.key.decode("utf-8", "replace") if self.record.key else ""

    @property
    def order(self) -> dict[str, Any]:
        order = self.data.get("order")
        return order if isinstance(order, dict) else {}


@dataclass
class ShopRuntime:
    """What every service shares: the broker, one producer, telemetry, dice, counters."""

    bootstrap: str
    topics: Topics
    telemetry: Telemetry
    dice: Dice
    pace: SlowPace
    producer: AIOKafkaProducer
    payments: PaymentCodec | None = None  # Avro payment commands, when a registry is there
    sent: Counter[str] = field(default_factory=Counter)
    first_completed: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def group(self, service: str) -> str:
        return f"{self.topics.prefix}-{service}"


class ShopService:
    """Plumbing of one service: consume, trace, emit. Subclasses write `handle`."""

    name = "service"  # OpenTelemetry service.name and CloudEvents source
    group_suffix = "service"
    handles_twice = False  # whether the reprocessing fault applies to this service

    def __init__(self, runtime: ShopRuntime) -> None:
        self.runtime = runtime
        self.topics = runtime.topics
        self.dice = runtime.dice
        self.tracer = runtime.telemetry.tracer(self.name)
        self.group_id = runtime.group(self.group_suffix)
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def subscriptions(self) -> Sequence[str]:
        return ()

    async def handle(self, message: Received) -> None:
        """React to one message (messages of other types are simply ignored)."""

    async def start(self) -> None:
        if self.subscriptions():
            self._consumer = AIOKafkaConsumer(
                *self.subscriptions(),
                bootstrap_servers=self.runtime.bootstrap,
                group_id=self.group_id,
                client_id=self.group_id,
                auto_offset_reset="earliest",
                enable_auto_commit=True,
                auto_commit_interval_ms=1000,
            )
            await self._consumer.start()
            self._tasks.append(asyncio.create_task(self._consume(self._consumer)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()  # commits what was processed
            self._consumer = None

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            record = await consumer.getone()
            try:
                await self._process(record)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: failed to process %s@%d", self.name, record.topic, record.offset)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        envelope = Envelope.from_headers(record.headers)
        if envelope is None:
            log.debug("%s: skipping a record without CloudEvents headers", self.name)
            return
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": self.group_id,
            "messaging.message.id": envelope.id,
        }
        if record.key:
            attributes["messaging.kafka.message.key"] = record.key.decode("utf-8", "replace")
        with self.tracer.start_as_current_span(
            f"process {record.topic}",
            context=extract(record.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            payments = self.runtime.payments
            data = payments.decode(record.value) if payments is not None else None
            await self.handle(
                Received(record, envelope, data or messages.decode_data(record.value))
            )
        if self.handles_twice and self.dice.reprocess():  # the fault: the record once more
            self.handles_twice = False  # once per run of the loop, not forever
            try:
                await self._process(record)
            finally:
                self.handles_twice = True

    async def emit(
        self,
        topic: str,
        event_type: str,
        data: dict[str, Any],
        *,
        key: str,
        ids: FlowIds,
    ) -> Envelope:
        """Publish a new CloudEvent (binary mode) with a producer span; return its envelope."""
        envelope = Envelope.new(event_type, source=self.name, subject=key, ids=ids)
        payments = self.runtime.payments
        if payments is not None and topic == payments.topic:
            metadata = {"eventType": event_type, "correlationId": ids.correlation_id,
                        "causationId": ids.causation_id}  # fmt: skip
            value = payments.encode(data, metadata)
            headers = envelope.headers(messages.AVRO_CONTENT_TYPE)
        else:
            value, headers = messages.encode_data(data), envelope.headers()
        await self._send(topic, key.encode(), value, headers, message_id=envelope.id,
                         misroute=self.dice.misroute())  # fmt: skip
        if self.dice.resend():  # the fault: sent again without idempotence, same event id
            await self._send(topic, key.encode(), value, headers, message_id=envelope.id)
        self.runtime.sent[event_type] += 1
        return envelope

    async def follow_up(
        self, message: Received, topic: str, event_type: str, **details: Any
    ) -> Envelope:
        """Emit the next event about the same order, caused by `message`."""
        data = {"order": message.order, **details}
        return await self.emit(
            topic, event_type, data, key=message.key, ids=message.envelope.follow()
        )

    async def forward(self, message: Received, topic: str, extra_headers: Headers) -> None:
        """Send a copy of a consumed record (same event, same headers) to a retry or DLT topic."""
        record = message.record
        headers = messages.carried_over(record.headers) + extra_headers
        await self._send(topic, record.key, record.value, headers, message_id=message.envelope.id)
        self.runtime.sent[topic] += 1

    async def _other_partition(self, topic: str, key: bytes | None) -> int | None:
        """The partition after the one the default partitioner picks for `key` (None: the
        topic has one partition, so the key cannot move)."""
        count = await _partitions(self.runtime.producer, topic)
        if count < 2 or key is None:
            return None
        natural: int = (murmur2(key) & 0x7FFFFFFF) % count
        return (natural + 1) % count

    async def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        *,
        message_id: str,
        misroute: bool = False,
    ) -> None:
        """Send one record; `misroute` (a fault) writes it to the partition after its key's."""
        partition = await self._other_partition(topic, key) if misroute else None
        attributes = {
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": message_id,
        }
        with self.tracer.start_as_current_span(
            f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            inject(headers)
            sent = await self.runtime.producer.send_and_wait(
                topic, value, key=key, headers=list(headers), partition=partition
            )
            span.set_attribute("messaging.destination.partition.id", str(sent.partition))
            span.set_attribute("messaging.kafka.offset", sent.offset)


def _resume(consumer: AIOKafkaConsumer, partition: TopicPartition) -> None:
    """Resume a paused partition, unless the consumer stopped or lost it meanwhile."""
    with contextlib.suppress(Exception):
        consumer.resume(partition)


def _fail_span(description: str) -> None:
    trace.get_current_span().set_status(Status(StatusCode.ERROR, description))


# --- the services ---------------------------------------------------------------------------


class OrderService(ShopService):
    """Takes orders and orchestrates the checkout saga; cancels when a refund says so."""

    name = "order-service"
    group_suffix = "order"

    def __init__(self, runtime: ShopRuntime, rate: float) -> None:
        super().__init__(runtime)
        self.rate = rate

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.checkout_replies, self.topics.payments)

    async def start(self) -> None:
        await super().start()
        self._tasks.append(asyncio.create_task(self._take_orders()))

    async def _take_orders(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while True:
            try:
                await self.place_order()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("order-service: could not place an order: %s", exc)
                next_at = time.monotonic() + 2.0
            next_at = max(next_at + interval, time.monotonic())
            await asyncio.sleep(next_at - time.monotonic())

    async def emit(
        self, topic: str, event_type: str, data: dict[str, Any], *, key: str, ids: FlowIds
    ) -> Envelope:
        """Events on the orders topic carry the order's version (ORDER_VERSIONS)."""
        if topic == self.topics.orders and event_type in ORDER_VERSIONS:
            data = {**data, "version": ORDER_VERSIONS[event_type]}
        return await super().emit(topic, event_type, data, key=key, ids=ids)

    async def place_order(self) -> str:
        """A customer checks out: OrderPlaced, then the saga's first command."""
        order_id = f"ord-{uuid.uuid4().hex[:10]}"
        items = self.dice.basket()
        order = {
            "order_id": order_id,
            "customer_id": f"cust-{uuid.uuid4().hex[:6]}",
            "items": items,
            "total_cents": basket_total_cents(items),
            "currency": "EUR",
        }
        ids = FlowIds(correlation_id=str(uuid.uuid4()), saga_id=f"checkout-{order_id}")
        http = {"http.request.method": "POST", "url.path": "/checkout", "shop.order_id": order_id}
        with self.tracer.start_as_current_span(
            "POST /checkout", kind=SpanKind.SERVER, attributes=http
        ):
            data = {"order": order}
            placed = await self.emit(self.topics.orders, "OrderPlaced", data, key=order_id, ids=ids)
            await self.emit(
                self.topics.inventory_commands,
                "ReserveInventory",
                data,
                key=order_id,
                ids=placed.follow(),
            )
        return order_id

    async def handle(self, message: Received) -> None:
        event_type = message.envelope.type
        if message.record.topic == self.topics.checkout_replies:
            step = next_checkout_step(event_type, self.topics)
            if step is not None:
                next_type, topic = step
                await self.follow_up(message, topic, next_type)
                if next_type == "OrderConfirmed" and self.dice.stale_update():
                    # The fault: an update computed from the order as it was placed lands
                    # after its confirmation, carrying that older version.
                    await self.follow_up(message, topic, "OrderUpdated", note="gift wrap",
                                         version=ORDER_VERSIONS["OrderPlaced"])  # fmt: skip
        elif event_type == "PaymentRefunded":
            reason = "shipment failed, payment refunded"
            await self.follow_up(message, self.topics.orders, "OrderCancelled", reason=reason)


class InventoryService(ShopService):
    """Reserves and releases stock (saga commands); releases it when a shipment fails."""

    name = "inventory-service"
    group_suffix = "inventory"

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.inventory_commands, self.topics.shipments)

    async def handle(self, message: Received) -> None:
        event_type, replies = message.envelope.type, self.topics.checkout_replies
        await asyncio.sleep(self.dice.latency_s())
        if event_type == "ReserveInventory":
            if self.dice.in_stock():
                await self.follow_up(message, replies, "InventoryReserved")
            else:
                _fail_span("out of stock")
                reason = "out of stock"
                await self.follow_up(message, replies, "InventoryReservationFailed", reason=reason)
        elif event_type == "ReleaseInventory":
            await self.follow_up(message, replies, "InventoryReleased")
        elif event_type == "ShipmentFailed":
            await self.follow_up(message, self.topics.inventory_events, "InventoryReleased")


class PaymentService(ShopService):
    """Charges cards through a flaky gateway; retries, dead-letters, refunds failed shipments."""

    name = "payment-service"
    group_suffix = "payment"

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.payment_commands, self.topics.shipments)

    async def handle(self, message: Received) -> None:
        if message.envelope.type == "ChargePayment":
            await self.charge(message)
        elif message.envelope.type == "ShipmentFailed":
            await self.follow_up(message, self.topics.payments, "PaymentRefunded")

    async def charge(self, message: Received) -> None:
        record, replies = message.record, self.topics.checkout_replies
        attempt = messages.attempt_of(record.headers)
        trace.get_current_span().set_attribute("shop.payment.attempt", attempt)
        outcome = self.dice.payment_attempt(attempt)
        if outcome in (PaymentOutcome.RETRY, PaymentOutcome.DEAD_LETTER):
            await asyncio.sleep(GATEWAY_TIMEOUT_MS / 1000)
            _fail_span(f"payment gateway timed out (attempt {attempt})")
        else:
            await asyncio.sleep(self.dice.latency_s(0.02, 0.08))

        if outcome is PaymentOutcome.RETRY:
            backoff_s = retry_backoff_s(attempt + 1, self.dice.odds.retry_backoff_s)
            due_ms = int((time.time() + backoff_s) * 1000)
            original_ms = messages.original_timestamp_of(record.headers, record.timestamp)
            retry = messages.retry_headers(attempt + 1, due_ms, original_ms)
            await self.forward(message, self.topics.payment_retry, retry)
        elif outcome is PaymentOutcome.DEAD_LETTER:
            failure = messages.gateway_timeout(attempt, GATEWAY_TIMEOUT_MS)
            dead_letter = messages.dead_letter_headers(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp,
                group=self.group_id,
                failure=failure,
                attempts=attempt,
            )
            await self.forward(message, self.topics.payment_dlt, dead_letter)
            await self.follow_up(message, replies, "PaymentFailed", reason=failure.message)
        elif outcome is PaymentOutcome.DECLINED:
            await self.follow_up(message, replies, "PaymentDeclined", reason="card declined")
        else:
            await self.follow_up(message, replies, "PaymentCharged")


class PaymentRetryService(PaymentService):
    """The payment service's listener on its retry topic (its own group, as in Spring Kafka)."""

    group_suffix = "payment-retry"

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.payment_retry,)

    async def handle(self, message: Received) -> None:
        due_ms = messages.due_ms_of(message.record.headers)
        if due_ms is not None:
            await asyncio.sleep(max(0.0, due_ms / 1000 - time.time()))
        await self.charge(message)


class ShippingService(ShopService):
    """Books a shipment for every confirmed order; the carrier sometimes refuses."""

    name = "shipping-service"
    group_suffix = "shipping"

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.orders,)

    async def handle(self, message: Received) -> None:
        if message.envelope.type != "OrderConfirmed":
            return
        await asyncio.sleep(self.dice.latency_s())
        if self.dice.carrier_accepts():
            tracking = f"PP{uuid.uuid4().int % 10**10:010d}"
            extra = {"eta_days": 2} if self.dice.new_field() else {}  # the shape-drift fault
            await self.follow_up(
                message,
                self.topics.shipments,
                "ShipmentBooked",
                carrier="parcelpost",
                tracking_number=tracking,
                **extra,
            )
            if not self.runtime.first_completed.done():
                self.runtime.first_completed.set_result(message.envelope.correlation_id)
        else:
            _fail_span("carrier refused the parcel")
            reason = "carrier refused: address not verified"
            await self.follow_up(message, self.topics.shipments, "ShipmentFailed", reason=reason)


class LedgerService(ShopService):
    """Books every placed order: only there with the poison-pill fault. One order it can
    never book (a NullPointerException every time): it dead-letters it once, then keeps
    trying that partition every few seconds without committing past it, as a listener whose
    error handler retries forever does. Its group stalls there; other partitions go on."""

    name = "ledger-service"
    group_suffix = "ledger"
    RETRY_EVERY_S = 5.0
    DEAD_LETTER_AFTER = 3  # attempts

    def __init__(self, runtime: ShopRuntime) -> None:
        super().__init__(runtime)
        self.poisoned: tuple[str, int, int] | None = None
        self.attempts = 0

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.orders,)

    async def start(self) -> None:
        await create_topics(self.runtime.bootstrap, {self.topics.ledger_dlt: 1})
        self._consumer = AIOKafkaConsumer(
            *self.subscriptions(), bootstrap_servers=self.runtime.bootstrap,
            group_id=self.group_id, client_id=self.group_id, auto_offset_reset="earliest",
            enable_auto_commit=False,
        )  # fmt: skip
        await self._consumer.start()
        self._tasks.append(asyncio.create_task(self._book(self._consumer)))

    async def _book(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            record = await consumer.getone()
            place = (record.topic, record.partition, record.offset)
            envelope = Envelope.from_headers(record.headers)
            if self.poisoned is None and envelope is not None \
                    and envelope.type == "OrderPlaced" and self.dice.poison():  # fmt: skip
                self.poisoned = place
            partition = TopicPartition(record.topic, record.partition)
            if place == self.poisoned and envelope is not None:
                await self._fail(consumer, record, envelope, partition)
                continue
            await consumer.commit({partition: record.offset + 1})

    async def _fail(self, consumer: AIOKafkaConsumer, record: ConsumerRecord[bytes, bytes],
                    envelope: Envelope, partition: TopicPartition) -> None:  # fmt: skip
        self.attempts += 1
        message = Received(record, envelope, messages.decode_data(record.value))
        if self.attempts == self.DEAD_LETTER_AFTER:
            failure = messages.ledger_null_amount(message.order.get("order_id", "?"))
            dead_letter = messages.dead_letter_headers(
                topic=record.topic, partition=record.partition, offset=record.offset,
                timestamp_ms=record.timestamp, group=self.group_id, failure=failure,
                attempts=self.attempts,
            )  # fmt: skip
            await self.forward(message, self.topics.ledger_dlt, dead_letter)
        consumer.seek(partition, record.offset)  # read it again ...
        consumer.pause(partition)  # ... a little later
        asyncio.get_running_loop().call_later(self.RETRY_EVERY_S, _resume, consumer, partition)


class NotificationService(ShopService):
    """Emails customers. Deliberately slow in phases, so that its consumer lag moves."""

    name = "notification-service"
    group_suffix = "notification"
    handles_twice = True  # what the reprocessing fault makes it do to some records
    TEMPLATES = {
        "ShipmentBooked": "order-shipped",
        "OrderCancelled": "order-cancelled",
        "OrderRejected": "order-rejected",
    }

    def __init__(self, runtime: ShopRuntime) -> None:
        super().__init__(runtime)
        self.started_at = time.monotonic()

    def subscriptions(self) -> Sequence[str]:
        return (self.topics.orders, self.topics.shipments)

    async def handle(self, message: Received) -> None:
        await asyncio.sleep(self.runtime.pace.delay_s(time.monotonic() - self.started_at))
        template = self.TEMPLATES.get(message.envelope.type)
        if template is not None:
            await self.follow_up(
                message,
                self.topics.notifications,
                "NotificationSent",
                channel="email",
                template=template,
            )


# --- the whole shop --------------------------------------------------------------------------


async def _partitions(producer: Any, topic: str) -> int:
    return len(await producer.partitions_for(topic) or ())


class Shop:
    """Creates the topics and runs every service until `stop`."""

    def __init__(
        self,
        bootstrap: str,
        otlp_endpoint: str | None,
        *,
        prefix: str = "shop",
        rate: float = 2.0,
        odds: Odds | None = None,
        seed: int | None = None,
        pace: SlowPace | None = None,
        registry_url: str | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 orders per second")
        self.bootstrap = bootstrap
        self.topics = Topics(prefix)
        self.rate = rate
        self.telemetry = Telemetry(otlp_endpoint)
        self.dice = Dice(odds, seed)
        self.pace = pace or SlowPace()
        self.registry_url = registry_url
        self.runtime: ShopRuntime | None = None
        self.services: list[ShopService] = []

    @property
    def first_completed(self) -> asyncio.Future[str]:
        """Resolves to the correlation id of the first order that was shipped."""
        assert self.runtime is not None, "start the shop first"
        return self.runtime.first_completed

    def summary(self) -> str:
        sent = self.runtime.sent if self.runtime else Counter[str]()
        return (
            f"{sent['OrderPlaced']} orders placed, {sent['ShipmentBooked']} shipped, "
            f"{sent['OrderCancelled'] + sent['OrderRejected']} cancelled or rejected, "
            f"{sent[self.topics.payment_retry]} payment retries, "
            f"{sent[self.topics.payment_dlt]} dead-lettered"
        )

    async def start(self) -> None:
        await create_topics(self.bootstrap, self.topics.partitions())
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            linger_ms=5,
            client_id=f"{self.topics.prefix}-producer",
        )
        await producer.start()
        self.runtime = ShopRuntime(
            self.bootstrap, self.topics, self.telemetry, self.dice, self.pace, producer
        )
        if self.registry_url is not None:
            self.runtime.payments = await asyncio.to_thread(
                PaymentCodec, self.registry_url, self.topics.payment_commands
            )
        self.services = [
            InventoryService(self.runtime),
            PaymentService(self.runtime),
            PaymentRetryService(self.runtime),
            ShippingService(self.runtime),
            NotificationService(self.runtime),
            *([LedgerService(self.runtime)] if self.dice.odds.poison > 0 else []),
            OrderService(self.runtime, self.rate),  # started last: it makes the traffic
        ]
        *reactors, orders = self.services
        try:
            await asyncio.gather(*(service.start() for service in reactors))
            await orders.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every service, the producer, and flush the last spans."""
        for service in reversed(self.services):
            await service.stop()
        self.services = []
        if self.runtime is not None:
            with contextlib.suppress(Exception):
                await self.runtime.producer.stop()
            if self.runtime.payments is not None:
                self.runtime.payments.close()
        # Flushing posts to the console, which may run on this very event loop.
        await asyncio.to_thread(self.telemetry.shutdown)


async def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    """Create the topics that do not exist yet, with their partition counts."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="eventscope-demo")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, count, 1) for name, count in partitions.items() if name not in existing
        ]
        if not missing:
            return
        response = await admin.create_topics(missing)
        for topic, code, *rest in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                detail = rest[0] if rest else ""
                raise RuntimeError(f"could not create topic {topic}: error {code} {detail}")
        await _until_led(admin, [topic.name for topic in missing])
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 15) -> None:
    """Wait until every partition of new topics has a leader (clients then start cleanly)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        if all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(partition["leader"] >= 0 for partition in topic["partitions"])
            for topic in described
        ):
            return
        await asyncio.sleep(0.2)
