"""When a webhook delivery is done, worth retrying, or hopeless, and how long to wait.

Rules: a 2xx response means delivered; network errors, timeouts, 408, 429 and 5xx are
retried with exponential backoff and jitter; 410 Gone means the endpoint is gone for good
and should be disabled; every other status is a permanent failure. A ``Retry-After`` from
the server is honoured, up to one hour, even when that exceeds the policy's ``max_s``.
Retrying stops once the first attempt is older than ``max_age_s``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

# Longest wait a server may impose with Retry-After; longer requests are shortened to this.
MAX_RETRY_AFTER_S = 3600.0

_DELTA_SECONDS = re.compile(r"-?[0-9]+")
_MAX_HEADER_CHARS = 200
_MAX_STEPS = 1_000_000


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"  # 410: disable the endpoint


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_s: float = 1.0
    max_s: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.2  # each delay varies by up to this fraction either way
    max_age_s: float = 24 * 3600

    def __post_init__(self) -> None:
        values = (self.initial_s, self.max_s, self.multiplier, self.jitter, self.max_age_s)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise ValueError("retry policy values must be finite numbers")
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("retry policy needs 0 < initial_s <= max_s")
        if self.multiplier < 1:
            raise ValueError("retry policy multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("retry policy jitter must be between 0 and 1")
        if self.max_age_s < 0:
            raise ValueError("retry policy max_age_s must not be negative")


@dataclass(frozen=True, slots=True)
class NextStep:
    """What to do after an attempt: the outcome, and for RETRY the delay before the next."""

    outcome: Outcome
    delay_s: float | None = None


def classify(status: int | None, error: str | None) -> Outcome:
    """Classify one attempt by its HTTP status; None means no response (network error, timeout).

    The error text is not interpreted: without a response every failure is treated as
    transient, which is what connection resets and timeouts usually are.
    """
    if status is None or isinstance(status, bool) or not isinstance(status, int):
        return Outcome.RETRY
    if 200 <= status <= 299:
        return Outcome.DELIVERED
    if status == 410:
        return Outcome.GONE
    if status in (408, 429) or 500 <= status <= 599:
        return Outcome.RETRY
    return Outcome.FAILED


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Read a ``Retry-After`` header as seconds to wait from ``now``.

    Accepts delta-seconds or an HTTP-date. Negative values and past dates give 0; values
    beyond MAX_RETRY_AFTER_S are capped to it; anything unreadable gives None. A naive
    ``now`` or date is taken to be UTC.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        if text.startswith("-"):
            return 0.0
        if len(text) > 12:  # far beyond the cap; also avoids converting huge digit strings
            return MAX_RETRY_AFTER_S
        return _clamp_wait(float(int(text)))
    if not text or len(text) > _MAX_HEADER_CHARS:
        return None
    try:
        when = parsedate_to_datetime(text)
        wait = (_as_utc(when) - _as_utc(now)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
        return None
    return _clamp_wait(wait)


def next_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after_s: float | None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    The base delay is ``initial_s * multiplier ** (attempt - 1)``, capped at ``max_s``; it
    then varies by up to ``jitter`` of itself either way (still never above ``max_s``) so
    that many endpoints failing together do not retry in lockstep. A ``Retry-After`` is a
    floor: the delay is never shorter than it, up to MAX_RETRY_AFTER_S.
    """
    steps = min(max(0, attempt - 1), _MAX_STEPS) if isinstance(attempt, int) else 0
    if steps == 0 or policy.multiplier == 1:
        base = policy.initial_s
    elif steps * math.log(policy.multiplier) >= math.log(policy.max_s / policy.initial_s):
        base = policy.max_s  # also keeps huge attempt numbers from overflowing
    else:
        base = policy.initial_s * policy.multiplier**steps
    roll = _unit(rand)
    delay = min(policy.max_s, base * (1 + policy.jitter * (2 * roll - 1)))
    floor = _clamp_wait(retry_after_s) if retry_after_s is not None else 0.0
    return max(delay, floor or 0.0)


def give_up(policy: RetryPolicy, first_attempt_at: datetime, now: datetime) -> bool:
    """True once the first attempt is at least ``max_age_s`` old: stop retrying."""
    try:
        age = (_as_utc(now) - _as_utc(first_attempt_at)).total_seconds()
    except (TypeError, AttributeError, OverflowError):
        return True
    return age >= policy.max_age_s


def after_attempt(
    policy: RetryPolicy,
    *,
    status: int | None,
    error: str | None,
    retry_after: str | None,
    attempt: int,
    first_attempt_at: datetime,
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> NextStep:
    """Combine the rules for one finished attempt: classify, then schedule or give up."""
    outcome = classify(status, error)
    if outcome is not Outcome.RETRY:
        return NextStep(outcome)
    if give_up(policy, first_attempt_at, now):
        return NextStep(Outcome.FAILED)
    wait = parse_retry_after(retry_after, now)
    return NextStep(Outcome.RETRY, next_delay(policy, attempt, wait, rand))


def _clamp_wait(seconds: float) -> float | None:
    if not isinstance(seconds, int | float) or math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, float(seconds)))


def _unit(rand: Callable[[], float]) -> float:
    """A random number in [0, 1]; a misbehaving source falls back to the midpoint."""
    try:
        value = float(rand())
    except (TypeError, ValueError, OverflowError):
        return 0.5
    if math.isnan(value):
        return 0.5
    return min(1.0, max(0.0, value))


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
