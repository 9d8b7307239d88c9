"""Saga definitions and event helpers shared by the saga tests."""

from collectors.saga_rules import SagaRules, SagaStatus
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


TRIP_FAILURE = (
    "TripBookingRequested",
    "FlightReserved",
    "HotelReserved",
    "PaymentFailed",
    "HotelCancelled",
    "FlightCancelled",
)
