"""One saga's state and status, from its events in any order."""

import itertools
import json
import random

import pytest

from collectors.saga_config import saga_rules_from_mapping
from collectors.saga_rules import (
    MAX_RECORDS,
    SagaDefinition,
    SagaRules,
    SagaStatus,
    StepDefinition,
)
from collectors.saga_state import SagaEventRef, SagaState, new_state
from tests.collectors.saga_fixtures import (
    HOUR_MS,
    MINUTE_MS,
    RIDE_PAYMENT_DEFINITION,
    TRIP_DEFINITION,
    TRIP_FAILURE,
    events,
    replay,
    statuses_along,
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


@pytest.mark.parametrize("with_definition", [True, False])
def test_steps_after_the_rollback_are_reported(with_definition: bool) -> None:
    """A cancelled trip whose old booking command was redriven: the hotel is booked again
    after the saga was compensated. It must not read as a clean rollback."""
    rules = saga_rules_from_mapping({"definitions": [TRIP_DEFINITION]} if with_definition else {})
    refs = events("TripBookingRequested", "FlightReserved", "HotelReserved", "PaymentFailed")
    refs += events("HotelCancelled", "FlightCancelled", start_ms=10_000)
    clean = replay(refs, rules)
    assert clean.problems == []
    late = replay([*refs, *events("HotelReserved", start_ms=60_000)], rules)
    assert "HotelReserved (step hotel) after compensation" in late.problems
    told = replay([*refs, *events("NotificationSent", start_ms=60_000)], rules)
    assert told.problems == []  # a new step after the rollback is not a re-run


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
