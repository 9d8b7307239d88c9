"""Classifying events into steps and outcomes, and recognizing saga definitions."""

import json

import pytest

from collectors.saga_config import saga_rules_from_mapping
from collectors.saga_rules import (
    Outcome,
    SagaRules,
)
from collectors.saga_state import SagaEventRef, new_state
from tests.collectors.saga_fixtures import (
    HOUR_MS,
    TRIP_DEFINITION,
)


@pytest.mark.parametrize(
    ("event_type", "topic", "outcome", "step"),
    [
        ("FlightReserved", "", Outcome.SUCCEEDED, "flight"),
        ("ReserveFlight", "flight-commands", Outcome.STARTED, "flight"),
        ("ReserveFlight", "", Outcome.STARTED, "flight"),
        ("FlightReservationRequested", "", Outcome.STARTED, "flight"),
        ("HotelReserved", "", Outcome.SUCCEEDED, "hotel"),
        ("HotelCancelled", "", Outcome.COMPENSATION, "hotel"),
        ("CancelHotel", "hotel-commands", Outcome.COMPENSATION, "hotel"),
        ("BookHotelReply", "hotel-replies", Outcome.SUCCEEDED, "hotel"),
        ("HotelReservationFailed", "hotel.replies", Outcome.FAILED, "hotel"),
        ("RefundInitiated", "payments", Outcome.COMPENSATION, "payment"),
        ("PaymentRefundRequested", "", Outcome.COMPENSATION, "payment"),
        ("payment.failed", "", Outcome.FAILED, "payment"),
        ("com.example.payment.failed.v1", "", Outcome.FAILED, "payment"),
        ("PaymentFailedEvent", "", Outcome.FAILED, "payment"),
        ("PAYMENT_DECLINED", "", Outcome.FAILED, "payment"),
        ("payment_timed_out", "", Outcome.FAILED, "payment"),
        ("PaymentExpired", "", Outcome.FAILED, "payment"),
        ("order_cancelled", "", Outcome.COMPENSATION, "order"),
        ("OrderPlaced", "", Outcome.STARTED, "order"),
        ("OrderCreated", "", Outcome.STARTED, "order"),
        ("TripBookingRequested", "", Outcome.STARTED, "trip"),
        ("PaymentSucceeded", "", Outcome.SUCCEEDED, "payment"),
        ("DriverCredited", "", Outcome.SUCCEEDED, "driver"),
        ("DriverCreditFailed", "", Outcome.FAILED, "driver"),
        ("ReceiptSent", "", Outcome.SUCCEEDED, "receipt"),
        ("InventoryRolledBack", "", Outcome.COMPENSATION, "inventory"),
        ("InventoryReleased", "", Outcome.COMPENSATION, "inventory"),
        ("UndoShipment", "", Outcome.COMPENSATION, "shipment"),
        ("com.example.hotel.reservation.cancelled", "", Outcome.COMPENSATION, "hotel"),
        ("OrderAddressChanged", "orders", Outcome.INFO, "order-address-changed"),
    ],
)
def test_default_rules_classify_common_names(
    event_type: str, topic: str, outcome: Outcome, step: str
) -> None:
    classification = SagaRules().classify(event_type, topic)
    assert (classification.outcome, classification.step) == (outcome, step)
    assert classification.rule


def test_compensation_words_win_over_start_words() -> None:
    classification = SagaRules().classify("RefundInitiated", "")
    assert classification.outcome is Outcome.COMPENSATION
    assert "Refund" in classification.rule


def test_forward_step_and_its_compensation_share_a_step_name() -> None:
    rules = SagaRules()
    names = {
        rules.classify(name, "").step
        for name in ("FlightReserved", "FlightReservationRequested", "FlightCancelled")
    }
    assert names == {"flight"}
    assert rules.classify("ReserveFlight", "flight-commands").step == "flight"


def test_reply_topic_means_success_unless_the_name_says_otherwise() -> None:
    rules = SagaRules()
    assert rules.classify("FlightReply", "flight-replies").outcome is Outcome.SUCCEEDED
    assert rules.classify("FlightReservationFailed", "flight-replies").outcome is Outcome.FAILED


@pytest.mark.parametrize(
    "event_type",
    [
        "",
        " ",
        "x" * 10_000,
        "Ω≈ç√∫µ≤≥÷ПлатёжОтклонён" * 50,
        "\x00\x01\udcff\ud800Failed",
        "...///:::",
        "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z" * 40,
        "Cancel" * 2_000,
        "🚀Reserved",
    ],
)
def test_hostile_event_types_never_raise(event_type: str) -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    classification = rules.classify(event_type, event_type)
    assert isinstance(classification.outcome, Outcome)
    assert len(classification.step) <= 200
    rules.definition_for(event_type, event_type)
    state = new_state(event_type)
    state.apply(SagaEventRef(event_type, event_type, event_type, 5, event_type), rules)
    state.evaluate(10 * HOUR_MS, rules)
    json.dumps(state.to_json())


def test_wrong_types_in_an_event_never_raise() -> None:
    rules = SagaRules()
    state = new_state("s")
    hostile = SagaEventRef(b"\xff\xfe", None, 12, float("nan"), b"svc")  # type: ignore[arg-type]
    state.apply(hostile, rules)
    state.apply(SagaEventRef("k", "PaymentFailed", "t", 10**30, None), rules)
    assert state.last_ms <= 2**53
    json.dumps(state.to_json())


# ---------------------------------------------------------------- configuration


def test_definition_is_recognized_by_event_type_topic_or_first_event() -> None:
    rules = saga_rules_from_mapping(
        {
            "definitions": [
                TRIP_DEFINITION,
                {"name": "by-topic", "topics": ["ride-*"], "steps": [{"name": "payment"}]},
            ]
        }
    )
    assert rules.definition_for("TripBookingRequested", "x").name == "trip-booking"
    assert rules.definition_for("hotelreserved", "x").name == "trip-booking"
    assert rules.definition_for("Whatever", "RIDE-events").name == "by-topic"
    assert rules.definition_for("Whatever", "other") is None


# ---------------------------------------------------------------- orchestrated trip booking
