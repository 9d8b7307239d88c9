"""The demo shop's pure logic: outcomes, the orchestrator's rule book, pacing, wire format."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from collectors.conventions import Conventions, RawRecord, normalize
from collectors.saga_config import saga_rules_from_mapping
from collectors.saga_rules import SagaStatus
from collectors.saga_state import SagaEventRef, new_state
from console.demo import messages
from console.demo.flows import (
    CHECKOUT_NEXT,
    Dice,
    Odds,
    PaymentOutcome,
    SlowPace,
    Topics,
    basket_total_cents,
    next_checkout_step,
    retry_backoff_s,
)
from console.demo.messages import Envelope, FlowIds

TOPICS = Topics("shop")


def test_the_same_seed_gives_the_same_story() -> None:
    def story(seed: int) -> list[object]:
        dice = Dice(seed=seed)
        return [(dice.in_stock(), dice.payment_attempt(1), dice.carrier_accepts(),
                 dice.basket()) for _ in range(50)]  # fmt: skip

    assert story(7) == story(7)
    assert story(7) != story(8)


def test_payment_retries_until_the_last_attempt_then_dead_letters() -> None:
    always_times_out = Dice(Odds(gateway_timeout=1.0, max_payment_attempts=3), seed=1)
    assert always_times_out.payment_attempt(1) is PaymentOutcome.RETRY
    assert always_times_out.payment_attempt(2) is PaymentOutcome.RETRY
    assert always_times_out.payment_attempt(3) is PaymentOutcome.DEAD_LETTER

    always_declines = Dice(Odds(gateway_timeout=0.0, card_declined=1.0), seed=1)
    assert always_declines.payment_attempt(1) is PaymentOutcome.DECLINED
    never_fails = Dice(Odds(gateway_timeout=0.0, card_declined=0.0), seed=1)
    assert never_fails.payment_attempt(3) is PaymentOutcome.CHARGED


def test_default_odds_give_failures_of_every_kind_within_a_minute_of_traffic() -> None:
    dice = Dice(seed=3)
    outcomes = Counter(dice.payment_attempt(attempt) for attempt in (1, 2, 3) for _ in range(120))
    assert set(outcomes) == set(PaymentOutcome)
    assert outcomes[PaymentOutcome.CHARGED] > outcomes[PaymentOutcome.RETRY]


@pytest.mark.parametrize("field", ["out_of_stock", "card_declined", "gateway_timeout"])
def test_odds_must_be_probabilities(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Odds(**{field: 1.5})
    with pytest.raises(ValueError, match="attempts"):
        Odds(max_payment_attempts=0)


def test_the_orchestrator_answers_every_reply_on_the_right_topic() -> None:
    assert next_checkout_step("InventoryReserved", TOPICS) == (
        "ChargePayment", "shop.payment.commands")  # fmt: skip
    assert next_checkout_step("PaymentFailed", TOPICS) == (
        "ReleaseInventory", "shop.inventory.commands")  # fmt: skip
    assert next_checkout_step("InventoryReleased", TOPICS) == ("OrderCancelled", "shop.orders")
    assert next_checkout_step("ShipmentBooked", TOPICS) is None
    for _, attribute in CHECKOUT_NEXT.values():
        assert getattr(TOPICS, attribute) in TOPICS.partitions()


def test_topics_follow_spring_kafka_names_and_the_dlq_patterns() -> None:
    topics = Topics("t-1")
    assert topics.payment_retry == "t-1.payment.commands-retry"
    assert topics.payment_dlt == "t-1.payment.commands-dlt"
    assert all(name.startswith("t-1.") for name in topics.partitions())
    from collectors.conventions import is_dlq_topic

    assert is_dlq_topic(topics.payment_dlt, Conventions())
    assert not is_dlq_topic(topics.payment_retry, Conventions())


def test_backoff_doubles_per_attempt() -> None:
    assert [retry_backoff_s(a, 0.5) for a in (2, 3, 4)] == [0.5, 1.0, 2.0]


def test_basket_total() -> None:
    items = [{"sku": "a", "quantity": 2, "unit_price_cents": 150}, {"sku": "b", "quantity": 1,
             "unit_price_cents": 99}]  # fmt: skip
    assert basket_total_cents(items) == 399
    basket = Dice(seed=5).basket()
    assert 1 <= len(basket) <= 3 and basket_total_cents(basket) > 0


def test_the_slow_consumer_starts_slow_then_catches_up() -> None:
    pace = SlowPace(period_s=60, slow_for_s=35, slow_delay_s=0.5, fast_delay_s=0.005)
    assert pace.delay_s(0) == 0.5
    assert pace.delay_s(34.9) == 0.5
    assert pace.delay_s(40) == 0.005
    assert pace.delay_s(61) == 0.5


# --- the wire format, as eventscope reads it -------------------------------------------------


def _record(topic: str, headers: list[tuple[str, bytes]]) -> RawRecord:
    return RawRecord(topic, 0, 5, 1_700_000_000_000, b"ord-1", b'{"order":{}}', headers)


def test_cloudevents_headers_feed_the_identity_columns() -> None:
    placed = Envelope.new("OrderPlaced", "order-service", "ord-1", FlowIds("corr-1", "saga-1"))
    reserve = Envelope.new("ReserveInventory", "order-service", "ord-1", placed.follow())
    row = normalize(_record("shop.inventory.commands", reserve.headers()), Conventions())
    assert (row.event_id, row.event_type, row.source) == (
        reserve.id, "ReserveInventory", "order-service")  # fmt: skip
    assert (row.correlation_id, row.causation_id, row.saga_id) == ("corr-1", placed.id, "saga-1")
    assert Envelope.from_headers(reserve.headers()) == reserve
    assert Envelope.from_headers([("ce_id", b"x")]) is None


def test_dead_letter_headers_are_read_as_spring_kafka_writes_them() -> None:
    envelope = Envelope.new("ChargePayment", "order-service", "ord-1", FlowIds("c", "s"))
    failure = messages.gateway_timeout(3, 200)
    headers = messages.carried_over([*envelope.headers(), ("traceparent", b"00-x")]) + (
        messages.dead_letter_headers(topic="shop.payment.commands-retry", partition=2,
                                     offset=1234567890123, timestamp_ms=1_700_000_000_000,
                                     group="shop-payment-retry", failure=failure, attempts=3)
    )  # fmt: skip
    row = normalize(_record("shop.payment.commands-dlt", headers), Conventions())
    assert row.is_dlq and row.dlq_format == "spring"
    assert row.dlq_original_topic == "shop.payment.commands-retry"
    assert (row.dlq_original_partition, row.dlq_original_offset) == (2, 1234567890123)
    assert row.dlq_error_class.endswith(".ListenerExecutionFailedException")  # type: ignore[union-attr]
    assert "gateway did not answer" in (row.dlq_error_message or "")
    assert row.event_type == "ChargePayment" and row.correlation_id == "c"
    assert row.dlq_attempts == 3  # the DLQ page's Attempts column agrees with "attempt 3"
    assert all(name != "traceparent" for name, _ in headers)


def test_retry_headers_round_trip() -> None:
    headers = messages.retry_headers(2, 1_700_000_000_500, 1_700_000_000_000)
    assert messages.attempt_of(headers) == 2
    assert messages.due_ms_of(headers) == 1_700_000_000_500
    assert messages.original_timestamp_of(headers, 0) == 1_700_000_000_000
    assert messages.attempt_of([]) == 1 and messages.due_ms_of([]) is None
    again = messages.carried_over(headers) + messages.retry_headers(3, 1, 1_700_000_000_000)
    assert messages.attempt_of(again) == 3
    row = normalize(_record("shop.payment.commands-retry", headers), Conventions())
    assert row.dlq_attempts == 2 and not row.is_dlq


def test_decode_data_is_forgiving() -> None:
    assert messages.decode_data(b'{"a": 1}') == {"a": 1}
    for bad in (None, b"", b"\xff", b"[1]", b"nope"):
        assert messages.decode_data(bad) == {}


# --- the story, as eventscope's saga view reads it --------------------------------------------

HAPPY = [
    ("OrderPlaced", "orders"), ("ReserveInventory", "inventory_commands"),
    ("InventoryReserved", "checkout_replies"), ("ChargePayment", "payment_commands"),
    ("PaymentCharged", "checkout_replies"), ("OrderConfirmed", "orders"),
    ("ShipmentBooked", "shipments"), ("NotificationSent", "notifications"),
]  # fmt: skip
PAYMENT_FAILED = [
    *HAPPY[:4],
    ("ChargePayment", "payment_retry"), ("ChargePayment", "payment_dlt"),
    ("PaymentFailed", "checkout_replies"), ("ReleaseInventory", "inventory_commands"),
    ("InventoryReleased", "checkout_replies"), ("OrderCancelled", "orders"),
    ("NotificationSent", "notifications"),
]  # fmt: skip
SHIPMENT_FAILED = [
    *HAPPY[:6],
    ("ShipmentFailed", "shipments"), ("PaymentRefunded", "payments"),
    ("InventoryReleased", "inventory_events"), ("OrderCancelled", "orders"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("story", "status"),
    [(HAPPY, SagaStatus.COMPLETED), (PAYMENT_FAILED, SagaStatus.COMPENSATED),
     (SHIPMENT_FAILED, SagaStatus.COMPENSATED)],
)  # fmt: skip
def test_the_saga_view_reads_each_story_as_intended(story: list[tuple[str, str]],
                                                    status: SagaStatus) -> None:  # fmt: skip
    rules = saga_rules_from_mapping({})
    saga = new_state("checkout-ord-1")
    for index, (event_type, attribute) in enumerate(story):
        ref = SagaEventRef(f"e{index}", event_type, getattr(TOPICS, attribute), 1000 + index * 10)
        saga.apply(ref, rules)
    assert saga.evaluate(2000, rules) is status


def test_event_health_faults_are_off_by_default_and_named() -> None:
    from console.demo.flows import FAULTS, Dice, Odds, chosen_faults, with_faults

    quiet = Dice(Odds(), seed=1)
    assert not any(quiet.resend() or quiet.misroute() for _ in range(1000))
    noisy = with_faults(Odds(), ("duplicates", "misrouted-keys"))
    assert noisy.resend > 0 and noisy.misroute > 0 and noisy.out_of_stock == Odds().out_of_stock
    with pytest.raises(ValueError, match="unknown fault 'gremlins'"):
        with_faults(Odds(), ("gremlins",))
    assert not any(quiet.reprocess() or quiet.new_field() for _ in range(1000))
    picked = chosen_faults(("duplicates", "random"), random.Random(3))
    assert picked[0] == "duplicates" and len(set(picked)) == 3 and set(picked) <= set(FAULTS)
    assert chosen_faults(("shape-drift",)) == ("shape-drift",)
    assert chosen_faults(("none",)) == ()
    drifting = with_faults(Odds(), ("reprocessing", "shape-drift", "poison-pill"))
    assert drifting.reprocess > 0 and drifting.new_field > 0 and drifting.poison > 0
    assert not any(quiet.poison() for _ in range(1000))
    assert not any(quiet.stale_update() for _ in range(1000))
    assert with_faults(Odds(), ("stale-updates",)).stale_update > 0


def test_an_order_version_only_grows_along_its_saga() -> None:
    from console.demo.flows import ORDER_VERSIONS

    lives = [("OrderPlaced", "OrderConfirmed"), ("OrderPlaced", "OrderRejected"),
             ("OrderPlaced", "OrderCancelled"),
             ("OrderPlaced", "OrderConfirmed", "OrderCancelled")]  # fmt: skip
    for life in lives:
        versions = [ORDER_VERSIONS[event_type] for event_type in life]
        assert versions == sorted(set(versions)), life
    on_orders = {name for name, topic in CHECKOUT_NEXT.values() if topic == "orders"}
    assert on_orders | {"OrderPlaced", "OrderCancelled"} == set(ORDER_VERSIONS)
