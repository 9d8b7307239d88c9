from datetime import UTC, datetime, timedelta

import pytest

from console.alerts.retry_policy import (
    MAX_RETRY_AFTER_S,
    Outcome,
    RetryPolicy,
    after_attempt,
    classify,
    give_up,
    next_delay,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, Outcome.RETRY),
        (200, Outcome.DELIVERED),
        (202, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (299, Outcome.DELIVERED),
        (301, Outcome.FAILED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (404, Outcome.FAILED),
        (408, Outcome.RETRY),
        (410, Outcome.GONE),
        (413, Outcome.FAILED),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (502, Outcome.RETRY),
        (503, Outcome.RETRY),
        (599, Outcome.RETRY),
        (100, Outcome.FAILED),
        (700, Outcome.FAILED),
    ],
)
def test_classify(status, outcome):
    assert classify(status, None) is outcome


def test_network_errors_are_retried():
    assert classify(None, "connection refused") is Outcome.RETRY
    assert classify(None, "timed out") is Outcome.RETRY


def test_retry_after_delta_seconds():
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 0 ", NOW) == 0
    assert parse_retry_after("-5", NOW) == 0
    assert parse_retry_after("999999", NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("9" * 5000, NOW) == MAX_RETRY_AFTER_S


def test_retry_after_http_date():
    assert parse_retry_after("Wed, 01 May 2024 12:02:00 GMT", NOW) == 120
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", NOW) == 0
    naive_now = NOW.replace(tzinfo=None)
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", naive_now) == 30


@pytest.mark.parametrize("garbage", [None, "", "soon", "1.5", "12abc", "Wed, 99 Foo", "x" * 500])
def test_retry_after_garbage_is_none(garbage):
    assert parse_retry_after(garbage, NOW) is None


def test_backoff_grows_exponentially_up_to_the_cap():
    policy = RetryPolicy(initial_s=1, max_s=300, multiplier=2, jitter=0)
    delays = [next_delay(policy, attempt, None) for attempt in range(1, 12)]
    assert delays[:5] == [1, 2, 4, 8, 16]
    assert delays[-1] == 300
    assert delays == sorted(delays)
    assert next_delay(policy, 10**12, None) == 300
    assert next_delay(policy, 0, None) == 1


def test_jitter_stays_within_bounds_and_varies():
    policy = RetryPolicy(initial_s=10, max_s=1000, multiplier=2, jitter=0.2)
    assert next_delay(policy, 1, None, rand=lambda: 0.0) == pytest.approx(8)
    assert next_delay(policy, 1, None, rand=lambda: 1.0) == pytest.approx(12)
    assert next_delay(policy, 1, None, rand=lambda: 0.5) == pytest.approx(10)
    seen = {next_delay(policy, 3, None) for _ in range(50)}
    assert all(32 <= d <= 48 for d in seen)
    assert len(seen) > 1
    capped = [next_delay(policy, 30, None) for _ in range(50)]
    assert all(800 <= d <= 1000 for d in capped)


def test_misbehaving_random_source_does_not_escape_bounds():
    policy = RetryPolicy(initial_s=10, max_s=1000, jitter=0.2)
    assert 8 <= next_delay(policy, 1, None, rand=lambda: 7.0) <= 12
    assert 8 <= next_delay(policy, 1, None, rand=lambda: float("nan")) <= 12


def test_retry_after_is_a_floor_even_above_max_s_up_to_an_hour():
    policy = RetryPolicy(initial_s=1, max_s=300, jitter=0)
    assert next_delay(policy, 1, 60) == 60
    assert next_delay(policy, 9, 1) == 256  # backoff larger than Retry-After wins
    assert next_delay(policy, 1, 1800) == 1800
    assert next_delay(policy, 1, 86400) == MAX_RETRY_AFTER_S


def test_give_up_after_max_age():
    policy = RetryPolicy(max_age_s=3600)
    first = NOW - timedelta(minutes=59)
    assert not give_up(policy, first, NOW)
    assert give_up(policy, first, NOW + timedelta(minutes=1))
    assert not give_up(policy, first.replace(tzinfo=None), NOW)


def test_after_attempt_combines_the_rules():
    policy = RetryPolicy(jitter=0)

    def step(status, retry_after=None, first=NOW):
        return after_attempt(
            policy,
            status=status,
            error=None,
            retry_after=retry_after,
            attempt=1,
            first_attempt_at=first,
            now=NOW,
        )

    assert step(200).outcome is Outcome.DELIVERED
    assert step(410).outcome is Outcome.GONE
    assert step(400).outcome is Outcome.FAILED
    retry = step(429, retry_after="30")
    assert (retry.outcome, retry.delay_s) == (Outcome.RETRY, 30)
    assert step(503, first=NOW - timedelta(days=2)).outcome is Outcome.FAILED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0},
        {"initial_s": 10, "max_s": 5},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"max_age_s": -1},
        {"max_s": float("inf")},
    ],
)
def test_invalid_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
