"""What happens to an order in the demo shop: topics, saga steps and random outcomes.

Everything here is plain data and pure functions (randomness comes from a seedable
`random.Random`), so the shop's behaviour can be tested without Kafka.

The order service *orchestrates* the checkout saga with commands and replies:

    OrderPlaced, ReserveInventory
      ├▶ InventoryReservationFailed ─▶ OrderRejected
      └▶ InventoryReserved ─▶ ChargePayment
           ├▶ PaymentCharged ─▶ OrderConfirmed
           └▶ PaymentDeclined | PaymentFailed ─▶ ReleaseInventory (compensation)
                ─▶ InventoryReleased ─▶ OrderCancelled

The payment gateway times out now and then: the payment service retries through a retry
topic and, after the last attempt, dead-letters the command the Spring Kafka way and
answers PaymentFailed.

After OrderConfirmed the services *react to each other's events* (choreography), and a
failed shipment is undone by the services themselves:

    OrderConfirmed ──▶ ShipmentBooked ──▶ NotificationSent
                   └▶ ShipmentFailed ──▶ PaymentRefunded ──▶ OrderCancelled ──▶ NotificationSent
                                     └▶ InventoryReleased
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Topics:
    """The shop's topics, all under one prefix (tests use a unique prefix per run)."""

    prefix: str = "shop"

    @property
    def orders(self) -> str:
        return f"{self.prefix}.orders"

    @property
    def inventory_commands(self) -> str:
        return f"{self.prefix}.inventory.commands"

    @property
    def payment_commands(self) -> str:
        return f"{self.prefix}.payment.commands"

    @property
    def payment_retry(self) -> str:
        """Spring Kafka's retry topic name for the payment commands."""
        return f"{self.payment_commands}-retry"

    @property
    def payment_dlt(self) -> str:
        """Spring Kafka's (3.3+) dead-letter topic name for the payment commands."""
        return f"{self.payment_commands}-dlt"

    @property
    def ledger_dlt(self) -> str:
        """Where the ledger service (the poison-pill fault) dead-letters what it cannot book."""
        return f"{self.orders}.ledger-dlt"

    @property
    def checkout_replies(self) -> str:
        return f"{self.prefix}.checkout.replies"

    @property
    def shipments(self) -> str:
        return f"{self.prefix}.shipments"

    @property
    def payments(self) -> str:
        return f"{self.prefix}.payments"

    @property
    def inventory_events(self) -> str:
        return f"{self.prefix}.inventory.events"

    @property
    def notifications(self) -> str:
        return f"{self.prefix}.notifications"

    def partitions(self) -> dict[str, int]:
        """Every topic with its partition count (created explicitly at start)."""
        return {
            self.orders: 3,
            self.inventory_commands: 3,
            self.payment_commands: 3,
            self.payment_retry: 1,
            self.payment_dlt: 1,
            self.checkout_replies: 3,
            self.shipments: 3,
            self.payments: 3,
            self.inventory_events: 2,
            self.notifications: 2,
        }


# The orchestrator's rule book: reply received -> (message to send next, topic attribute).
CHECKOUT_NEXT: dict[str, tuple[str, str]] = {
    "InventoryReserved": ("ChargePayment", "payment_commands"),
    "InventoryReservationFailed": ("OrderRejected", "orders"),
    "PaymentCharged": ("OrderConfirmed", "orders"),
    "PaymentDeclined": ("ReleaseInventory", "inventory_commands"),
    "PaymentFailed": ("ReleaseInventory", "inventory_commands"),
    "InventoryReleased": ("OrderCancelled", "orders"),
}


# The version of an order each event on the orders topic carries (`$.version`, the demo's
# sequence field for the Event health page): it only ever grows along an order's saga.
ORDER_VERSIONS = {"OrderPlaced": 1, "OrderConfirmed": 2, "OrderRejected": 2, "OrderCancelled": 3}


def next_checkout_step(reply_type: str, topics: Topics) -> tuple[str, str] | None:
    """(message type, topic) the orchestrator sends after a reply, or None for others."""
    step = CHECKOUT_NEXT.get(reply_type)
    if step is None:
        return None
    message_type, topic_attribute = step
    return message_type, getattr(topics, topic_attribute)


@dataclass(frozen=True)
class Odds:
    """How often things go wrong (probabilities per event; per attempt for the gateway)."""

    out_of_stock: float = 0.04
    card_declined: float = 0.08
    gateway_timeout: float = 0.3
    carrier_failure: float = 0.06
    max_payment_attempts: int = 3
    retry_backoff_s: float = 0.5
    # Faults for the Event health page, off unless `eventscope demo --faults` turns them on:
    # a producer re-sending an event without idempotence (the same event id twice), and an
    # event written to another partition than its key's (its order can be broken).
    resend: float = 0.0
    misroute: float = 0.0
    # ... a notification handled twice (a consumer that is not idempotent: the duplicate
    # processing check sees two process spans of one record), and the shipping service
    # adding a field to some of its ShipmentBooked events (the catalog's shape changes).
    reprocess: float = 0.0
    new_field: float = 0.0
    # ... and a ledger service that cannot get past one order (a poison pill): its group
    # stalls on that record while the record's dead letter says why.
    poison: float = 0.0
    # ... and an order service that publishes an update computed from a stale copy of the
    # order (its version goes back: an ordering break on the orders topic).
    stale_update: float = 0.0

    def __post_init__(self) -> None:
        for name in ("out_of_stock", "card_declined", "gateway_timeout", "carrier_failure",
                     "resend", "misroute", "reprocess", "new_field", "poison",
                     "stale_update"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        if self.max_payment_attempts < 1:
            raise ValueError("max_payment_attempts must be at least 1")


class PaymentOutcome(StrEnum):
    CHARGED = "charged"
    DECLINED = "declined"
    RETRY = "retry"  # the gateway timed out; try again through the retry topic
    DEAD_LETTER = "dead-letter"  # timed out on the last attempt


CATALOG: tuple[tuple[str, int], ...] = (
    ("espresso-beans-1kg", 2490),
    ("pour-over-kettle", 5900),
    ("ceramic-dripper", 2200),
    ("paper-filters-100", 650),
    ("hand-grinder", 8900),
    ("travel-mug", 1990),
)


class Dice:
    """The shop's source of randomness; give a seed for a reproducible run."""

    def __init__(self, odds: Odds | None = None, seed: int | None = None) -> None:
        self.odds = odds or Odds()
        self._random = random.Random(seed)  # noqa: S311 (simulation, not security)

    def _chance(self, probability: float) -> bool:
        return self._random.random() < probability

    def in_stock(self) -> bool:
        return not self._chance(self.odds.out_of_stock)

    def payment_attempt(self, attempt: int) -> PaymentOutcome:
        """The outcome of charging a card on the given attempt (1-based)."""
        if self._chance(self.odds.gateway_timeout):
            if attempt < self.odds.max_payment_attempts:
                return PaymentOutcome.RETRY
            return PaymentOutcome.DEAD_LETTER
        if self._chance(self.odds.card_declined):
            return PaymentOutcome.DECLINED
        return PaymentOutcome.CHARGED

    def carrier_accepts(self) -> bool:
        return not self._chance(self.odds.carrier_failure)

    def resend(self) -> bool:
        return self.odds.resend > 0 and self._chance(self.odds.resend)

    def misroute(self) -> bool:
        return self.odds.misroute > 0 and self._chance(self.odds.misroute)

    def reprocess(self) -> bool:
        return self.odds.reprocess > 0 and self._chance(self.odds.reprocess)

    def new_field(self) -> bool:
        return self.odds.new_field > 0 and self._chance(self.odds.new_field)

    def poison(self) -> bool:
        return self.odds.poison > 0 and self._chance(self.odds.poison)

    def stale_update(self) -> bool:
        return self.odds.stale_update > 0 and self._chance(self.odds.stale_update)

    def basket(self) -> list[dict[str, int | str]]:
        """One to three catalog items with quantities."""
        chosen = self._random.sample(CATALOG, k=self._random.randint(1, 3))
        return [
            {"sku": sku, "quantity": self._random.randint(1, 3), "unit_price_cents": price}
            for sku, price in chosen
        ]

    def latency_s(self, low: float = 0.005, high: float = 0.05) -> float:
        """A plausible processing time."""
        return self._random.uniform(low, high)


def basket_total_cents(items: list[dict[str, int | str]]) -> int:
    return sum(int(item["quantity"]) * int(item["unit_price_cents"]) for item in items)


def retry_backoff_s(attempt: int, base_s: float) -> float:
    """Exponential backoff before the given attempt (attempt 2 waits base_s, 3 waits 2x...)."""
    return float(base_s * 2 ** max(0, attempt - 2))


@dataclass(frozen=True)
class SlowPace:
    """The notification service's pace: slow phases (lag grows), then fast ones (it catches up).

    The cycle starts slow, so lag shows within seconds of starting the demo.
    """

    period_s: float = 60.0
    slow_for_s: float = 35.0
    slow_delay_s: float = 0.5
    fast_delay_s: float = 0.005

    def delay_s(self, elapsed_s: float) -> float:
        in_cycle = elapsed_s % self.period_s
        return self.slow_delay_s if in_cycle < self.slow_for_s else self.fast_delay_s


# `eventscope demo --faults ...`: each name turns one fault on, at these odds.
FAULTS = {
    "duplicates": ("resend", 0.03),
    "misrouted-keys": ("misroute", 0.03),
    "reprocessing": ("reprocess", 0.05),
    "shape-drift": ("new_field", 0.3),
    "poison-pill": ("poison", 0.02),
    "stale-updates": ("stale_update", 0.05),
}


RANDOM_FAULTS = 2  # how many `--faults random` turns on


def chosen_faults(names: tuple[str, ...], rng: random.Random | None = None) -> tuple[str, ...]:
    """The names given, with `random` replaced by RANDOM_FAULTS others picked at random;
    `none` alone: no fault."""
    if names == ("none",):
        return ()
    if "random" not in names:
        return names
    given = tuple(name for name in names if name != "random")
    left = sorted(set(FAULTS) - set(given))
    dice = rng or random.Random()  # noqa: S311 (a demo's choice, not security)
    return given + tuple(dice.sample(left, min(RANDOM_FAULTS, len(left))))


def with_faults(odds: Odds, faults: tuple[str, ...]) -> Odds:
    """`odds` with the named faults (FAULTS) on; ValueError names an unknown one."""
    changes: dict[str, Any] = {}
    for name in faults:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
        field_name, probability = FAULTS[name]
        changes[field_name] = probability
    return replace(odds, **changes)
