import itertools
import json
import random

import pytest

from collectors.saga_config import saga_rules_from_mapping
from collectors.saga_rules import (
    MAX_RECORDS,
    Outcome,
    SagaDefinition,
    SagaRules,
    SagaStatus,
    StepDefinition,
)
from collectors.saga_state import SagaEventRef, SagaState, new_state

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

TRIP_DEFINITION = {
    "name": "trip-booking",
    "first_event_type": "TripBookingRequested",
    "timeout_s": 600,
    "final_event_types": ["TripBooked"],
    "steps": [
        {
            "name": "flight",
            "started": ["ReserveFlight"],
            "succeeded": ["FlightReserved"],
            "failed": ["FlightReservationFailed"],
            "compensations": ["FlightCancelled", "CancelFlight"],
            "timeout_s": 60,
        },
        {
            "name": "hotel",
            "started": ["ReserveHotel"],
            "succeeded": ["HotelReserved"],
            "failed": ["HotelReservationFailed"],
            "compensations": ["HotelCancelled", "CancelHotel"],
            "timeout_s": 60,
        },
        {
            "name": "payment",
            "started": ["ChargePayment"],
            "succeeded": ["PaymentSucceeded"],
            "failed": ["PaymentFailed", "PaymentDeclined"],
            "compensations": ["PaymentRefunded"],
        },
    ],
}

RIDE_PAYMENT_DEFINITION = {
    "name": "ride-payment",
    "first_event_type": "PaymentSucceeded",
    "final_event_types": ["ReceiptSent"],
    "timeout_s": 300,
    "steps": [
        {
            "name": "payment",
            "succeeded": ["PaymentSucceeded"],
            "failed": ["PaymentFailed"],
            "compensations": ["RefundInitiated", "PaymentRefunded"],
        },
        {
            "name": "driver",
            "succeeded": ["DriverCredited"],
            "failed": ["DriverCreditFailed"],
            "compensations": ["DriverDebited"],
        },
        {"name": "receipt", "succeeded": ["ReceiptSent"]},
    ],
}


def events(*types: str, topic: str = "bookings", start_ms: int = 1_000) -> list[SagaEventRef]:
    """One event per type, a second apart, on one topic (or "type@topic")."""
    refs = []
    for index, spec in enumerate(types):
        event_type, _, event_topic = spec.partition("@")
        timestamp_ms = start_ms + index * 1_000
        refs.append(
            SagaEventRef(
                event_key=f"c1/{event_topic or topic}/0/{timestamp_ms}",
                event_type=event_type,
                topic=event_topic or topic,
                timestamp_ms=timestamp_ms,
                service="svc",
            )
        )
    return refs


def replay(refs: list[SagaEventRef], rules: SagaRules) -> SagaState:
    state = new_state("saga-1")
    for ref in refs:
        state.apply(ref, rules)
    return state


def statuses_along(refs: list[SagaEventRef], rules: SagaRules) -> list[SagaStatus]:
    state = new_state("saga-1")
    seen = []
    for ref in refs:
        state.apply(ref, rules)
        seen.append(state.status)
    return seen


# ---------------------------------------------------------------- classification


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


def test_configured_words_beat_the_defaults() -> None:
    rules = saga_rules_from_mapping({"outcomes": {"succeeded": ["Created"]}})
    assert rules.classify("OrderCreated", "").outcome is Outcome.SUCCEEDED
    assert rules.classify("FlightReserved", "").outcome is Outcome.SUCCEEDED


def test_configured_prefix_word_and_topic_patterns() -> None:
    rules = saga_rules_from_mapping(
        {
            "use_defaults": False,
            "outcomes": {"failed": ["Oops*"], "compensation": ["*Storno*"]},
            "topics": {"started": ["orchestrator.*"]},
        }
    )
    assert rules.classify("OopsPayment", "").outcome is Outcome.FAILED
    assert rules.classify("payment.storno.done", "").outcome is Outcome.COMPENSATION
    assert rules.classify("Anything", "orchestrator.trips").outcome is Outcome.STARTED
    assert rules.classify("FlightReserved", "").outcome is Outcome.INFO


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"outcomes": {"started": [1]}}, "outcomes.started[0]"),
        ({"outcomes": {"started": ["*"]}}, "outcomes.started[0]"),
        ({"outcomes": {"begun": ["X"]}}, "outcomes.begun"),
        ({"outcomes": ["Failed"]}, "outcomes"),
        ({"topics": {"failed": "x"}}, "topics.failed"),
        ({"use_defaults": "no"}, "use_defaults"),
        ({"colour": 1}, "colour"),
        ({"definitions": {}}, "definitions"),
        ({"definitions": [{"steps": []}]}, "definitions[0].name"),
        ({"definitions": [{"name": "x"}]}, "definitions[0]"),
        (
            {"definitions": [{"name": "x", "event_types": ["A"], "timeout_s": -1}]},
            "definitions[0].timeout_s",
        ),
        (
            {"definitions": [{"name": "x", "event_types": ["A"], "timeout_s": True}]},
            "definitions[0].timeout_s",
        ),
        (
            {"definitions": [{"name": "x", "steps": [{"name": "a", "failed": [None]}]}]},
            "definitions[0].steps[0].failed[0]",
        ),
        (
            {"definitions": [{"name": "x", "steps": [{"name": "a"}, {"name": "A"}]}]},
            "definitions[0].steps[1].name",
        ),
        (
            {"definitions": [{"name": "x", "steps": [{"name": "a", "compensation": ["B"]}]}]},
            "definitions[0].steps[0].compensation",
        ),
        (
            {"definitions": [TRIP_DEFINITION, TRIP_DEFINITION]},
            "definitions[1].name",
        ),
    ],
)
def test_bad_configuration_names_the_bad_key(config: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        saga_rules_from_mapping(config)


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

TRIP_FAILURE = (
    "TripBookingRequested",
    "FlightReserved",
    "HotelReserved",
    "PaymentFailed",
    "HotelCancelled",
    "FlightCancelled",
)


def test_trip_rollback_without_definition() -> None:
    along = statuses_along(events(*TRIP_FAILURE), SagaRules())
    assert along[3:] == [SagaStatus.FAILED, SagaStatus.COMPENSATING, SagaStatus.COMPENSATED]


@pytest.mark.parametrize("failure", ["PaymentFailed", "PaymentDeclined"])
def test_trip_rollback_with_definition(failure: str) -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    refs = events("TripBookingRequested", "FlightReserved", "HotelReserved", failure)
    refs += events("HotelCancelled", "FlightCancelled", start_ms=10_000)
    state = replay(refs, rules)
    assert state.saga_type == "trip-booking"
    assert state.status is SagaStatus.COMPENSATED
    assert state.problems == []
    assert state.evaluate(refs[-1].timestamp_ms + 10 * HOUR_MS, rules) is SagaStatus.COMPENSATED
    progress = {step.name: step.state for step in state.step_progress(rules)}
    assert progress == {
        "flight": "compensated",
        "hotel": "compensated",
        "payment": "failed",
        "trip": "started",  # not a defined step, still shown
    }


def test_trip_compensations_out_of_reverse_order_are_reported() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    refs = events(
        "TripBookingRequested",
        "FlightReserved",
        "HotelReserved",
        "PaymentFailed",
        "FlightCancelled",
        "HotelCancelled",
    )
    state = replay(refs, rules)
    assert state.status is SagaStatus.COMPENSATED
    assert state.problems == ["compensation for flight before hotel"]


def test_orchestrated_commands_and_replies_without_definition() -> None:
    refs = events(
        "ReserveFlight@flight-commands",
        "FlightReserved@flight-replies",
        "ReserveHotel@hotel-commands",
        "HotelReserved@hotel-replies",
        "ChargePayment@payment-commands",
        "PaymentDeclined@payment-replies",
        "CancelHotel@hotel-commands",
        "CancelFlight@flight-commands",
    )
    along = statuses_along(refs, SagaRules())
    assert along[0] is SagaStatus.RUNNING
    assert along[1] is SagaStatus.COMPLETED  # nothing pending yet: see the module docs
    assert along[2] is SagaStatus.RUNNING
    assert along[5:] == [SagaStatus.FAILED, SagaStatus.COMPENSATING, SagaStatus.COMPENSATED]


def test_trip_completes_with_definition_on_final_event() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    refs = events("TripBookingRequested", "FlightReserved", "HotelReserved", "TripBooked")
    along = statuses_along(refs, rules)
    assert along == [SagaStatus.RUNNING] * 3 + [SagaStatus.COMPLETED]


# ---------------------------------------------------------------- choreographed payment


def test_choreographed_payment_completes_with_definition() -> None:
    rules = saga_rules_from_mapping({"definitions": [RIDE_PAYMENT_DEFINITION]})
    along = statuses_along(events("PaymentSucceeded", "DriverCredited", "ReceiptSent"), rules)
    assert along == [SagaStatus.RUNNING, SagaStatus.RUNNING, SagaStatus.COMPLETED]


def test_choreographed_payment_without_definition_is_completed_while_latest_news_is_good() -> None:
    rules = SagaRules()
    refs = events("PaymentSucceeded", "DriverCredited", "ReceiptSent")
    assert statuses_along(refs, rules) == [SagaStatus.COMPLETED] * 3
    state = replay([*refs, *events("DriverCreditFailed", start_ms=9_000)], rules)
    assert state.status is SagaStatus.FAILED  # a later event reopens it


@pytest.mark.parametrize("with_definition", [True, False])
def test_payment_failure_path_is_compensated_by_the_refund(with_definition: bool) -> None:
    config = {"definitions": [RIDE_PAYMENT_DEFINITION]} if with_definition else {}
    rules = saga_rules_from_mapping(config)
    refs = events("PaymentSucceeded", "DriverCreditFailed", "RefundInitiated")
    along = statuses_along(refs, rules)
    assert along[1:] == [SagaStatus.FAILED, SagaStatus.COMPENSATED]


def test_retried_step_that_then_succeeds_is_not_a_failure() -> None:
    refs = events("PaymentFailed", "PaymentSucceeded", "ReceiptSent")
    assert replay(refs, SagaRules()).status is SagaStatus.COMPLETED


# ---------------------------------------------------------------- timeouts


def test_stuck_when_a_defined_step_outlives_its_timeout() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(events("TripBookingRequested", "FlightReserved", "ReserveHotel"), rules)
    started = state.last_ms
    assert state.evaluate(started + 30_000, rules) is SagaStatus.RUNNING
    assert state.evaluate(started + 2 * MINUTE_MS, rules) is SagaStatus.STUCK
    assert any("hotel" in problem for problem in state.problems)


def test_stuck_when_the_saga_outlives_its_timeout() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(events("TripBookingRequested", "FlightReserved"), rules)
    assert state.evaluate(state.first_ms + 599_000, rules) is SagaStatus.RUNNING
    assert state.evaluate(state.first_ms + 601_000, rules) is SagaStatus.STUCK


def test_stuck_without_definition_after_the_default_quiet_time() -> None:
    rules = SagaRules()
    state = replay(events("OrderCreated", "ChargePayment@payment-commands"), rules)
    assert state.evaluate(state.last_ms + HOUR_MS - 1, rules) is SagaStatus.RUNNING
    assert state.evaluate(state.last_ms + HOUR_MS + 1, rules) is SagaStatus.STUCK
    assert state.evaluate(state.last_ms + 11 * MINUTE_MS, rules, 600) is SagaStatus.STUCK


def test_quiet_saga_with_nothing_pending_counts_as_completed() -> None:
    rules = SagaRules()
    state = replay(events("OrderNoteAdded", "OrderNoteAdded"), rules)
    assert state.status is SagaStatus.RUNNING
    assert state.evaluate(state.last_ms + 2 * HOUR_MS, rules) is SagaStatus.COMPLETED


def test_new_event_clears_a_stuck_status() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(events("TripBookingRequested", "ReserveFlight"), rules)
    assert state.evaluate(state.last_ms + 2 * MINUTE_MS, rules) is SagaStatus.STUCK
    state.apply(events("FlightReserved", start_ms=state.last_ms + 1)[0], rules)
    assert state.status is SagaStatus.RUNNING
    assert state.problems == []


@pytest.mark.parametrize("with_definition", [True, False])
def test_missing_compensation_after_timeout_names_the_step(with_definition: bool) -> None:
    config = {"definitions": [TRIP_DEFINITION]} if with_definition else {}
    rules = saga_rules_from_mapping(config)
    refs = events("FlightReserved", "HotelReserved", "PaymentFailed", "FlightCancelled")
    state = replay(refs, rules)
    assert state.status is SagaStatus.COMPENSATING
    later = state.last_ms + 2 * HOUR_MS
    assert state.evaluate(later, rules) is SagaStatus.COMPENSATION_INCOMPLETE
    assert "compensation missing for step hotel" in state.problems
    assert not any("flight" in problem for problem in state.problems)


def test_failure_without_any_compensation() -> None:
    refs = events("FlightReserved", "HotelReserved", "PaymentFailed")
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(refs, rules)
    assert state.status is SagaStatus.FAILED
    assert state.evaluate(state.last_ms + HOUR_MS, rules) is SagaStatus.COMPENSATION_INCOMPLETE
    undefined = replay(refs, SagaRules())
    assert undefined.evaluate(undefined.last_ms + 5 * HOUR_MS, SagaRules()) is SagaStatus.FAILED


def test_failure_of_first_step_needs_no_compensation() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(events("TripBookingRequested", "FlightReservationFailed"), rules)
    assert state.status is SagaStatus.FAILED
    assert state.evaluate(state.last_ms + 5 * HOUR_MS, rules) is SagaStatus.FAILED
    assert state.problems == []


# ---------------------------------------------------------------- order and arrival


def test_steps_out_of_defined_order_are_reported() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(events("PaymentSucceeded", "FlightReserved", "HotelReserved"), rules)
    assert state.status is SagaStatus.COMPLETED
    assert state.problems == ["step payment before flight", "step payment before hotel"]


def test_arrival_order_does_not_change_the_outcome() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    refs = events(*TRIP_FAILURE)
    expected = replay(refs, rules).to_json()
    for permutation in itertools.permutations(refs):
        assert replay(list(permutation), rules).to_json() == expected


def test_arrival_order_does_not_change_the_outcome_without_definition() -> None:
    rules = SagaRules()
    refs = events("PaymentSucceeded", "DriverCreditFailed", "RefundInitiated", "ReceiptSent")
    expected = replay(refs, rules)
    shuffler = random.Random(7)
    for _ in range(20):
        shuffled = refs[:]
        shuffler.shuffle(shuffled)
        state = replay(shuffled, rules)
        assert state.to_json() == expected.to_json()
        now = expected.last_ms + 2 * HOUR_MS
        assert state.evaluate(now, rules) == expected.evaluate(now, rules)


def test_saga_type_comes_from_the_earliest_recognized_event() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    refs = events("SomethingElse", "HotelReserved")
    assert replay(refs[::-1], rules).saga_type == "trip-booking"
    assert replay([refs[0]], rules).saga_type is None


def test_same_event_twice_changes_nothing() -> None:
    rules = SagaRules()
    refs = events("FlightReserved", "PaymentFailed")
    state = replay(refs, rules)
    before = state.to_json()
    for ref in refs:
        state.apply(ref, rules)
    assert state.to_json() == before


def test_history_is_bounded_but_time_range_is_not() -> None:
    rules = SagaRules()
    state = new_state("busy")
    for index in range(MAX_RECORDS + 50):
        state.apply(SagaEventRef(f"k{index}", "OrderNoteAdded", "t", index, None), rules)
    assert len(state.steps) == MAX_RECORDS
    assert (state.first_ms, state.last_ms) == (0, MAX_RECORDS + 49)
    assert state.steps[-1].timestamp_ms == MAX_RECORDS - 1


# ---------------------------------------------------------------- storage


def test_state_round_trips_through_json() -> None:
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]})
    state = replay(events(*TRIP_FAILURE[:5]), rules)
    text = json.dumps(state.to_json())
    loaded = SagaState.from_json(text)
    assert loaded == state
    loaded.apply(events("FlightCancelled", start_ms=20_000)[0], rules)
    assert loaded.status is SagaStatus.COMPENSATED


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "[]",
        b"\xff\xfe",
        "{",
        "[" * 100_000,
        {"format": 1},
        {"format": 99},
        {
            "format": 1,
            "saga_id": "s",
            "saga_type": None,
            "first_ms": 0,
            "last_ms": 0,
            "status": "exploded",
            "problems": [],
            "steps": [],
        },
        {
            "format": 1,
            "saga_id": "s",
            "saga_type": None,
            "first_ms": 0,
            "last_ms": 0,
            "status": "running",
            "problems": [],
            "steps": [{"key": "k", "ts": "yesterday"}],
        },
    ],
)
def test_corrupt_stored_state_is_a_value_error(payload: object) -> None:
    with pytest.raises(ValueError):
        SagaState.from_json(payload)  # type: ignore[arg-type]


def test_rules_can_be_built_in_code() -> None:
    definition = SagaDefinition(
        name="order",
        steps=(StepDefinition("stock", succeeded=("StockReserved",), compensations=("X",)),),
        event_types=("OrderPlaced",),
    )
    rules = SagaRules(definitions=(definition,))
    state = replay(events("OrderPlaced", "StockReserved"), rules)
    assert state.saga_type == "order"
    assert state.status is SagaStatus.COMPLETED
