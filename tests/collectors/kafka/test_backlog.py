"""The backlog's arithmetic: records waiting and the age of the oldest of them."""

from __future__ import annotations

from collectors.kafka.backlog import Backlog

P0, P1 = ("orders", 0), ("orders", 1)


def test_nothing_is_known_before_the_first_sample() -> None:
    backlog = Backlog()
    assert backlog.waiting({P0: 5}) is None
    assert backlog.age_s({P0: 5}, now=100.0) == 0.0


def test_records_waiting_are_counted_against_the_latest_end_offsets() -> None:
    backlog = Backlog()
    backlog.sample(10.0, {P0: 100, P1: 50})
    backlog.sample(15.0, {P0: 120, P1: 50})
    assert backlog.waiting({P0: 90, P1: 50}) == 30
    assert backlog.waiting({P0: 130, P1: 60}) == 0  # read past a sample: never negative


def test_the_age_runs_from_the_first_sample_the_index_has_not_caught_up_with() -> None:
    backlog = Backlog()
    backlog.sample(10.0, {P0: 100})
    backlog.sample(15.0, {P0: 120})
    backlog.sample(20.0, {P0: 140})
    assert backlog.age_s({P0: 100}, now=32.0) == 17.0  # records since 10 s are indexed
    assert backlog.age_s({P0: 125}, now=32.0) == 12.0  # ... those of the 15 s sample too
    assert backlog.age_s({P0: 140}, now=32.0) == 0.0


def test_a_stuck_index_ages_with_the_clock_and_caught_up_samples_are_dropped() -> None:
    backlog = Backlog()
    for second in range(10):
        backlog.sample(float(second), {P0: 10 * second})
    assert backlog.age_s({P0: 40}, now=10.0) == 5.0
    assert backlog.age_s({P0: 40}, now=70.0) == 65.0
    assert backlog.age_s({P0: 90}, now=70.0) == 0.0


def test_a_partition_with_no_indexed_position_is_not_counted() -> None:
    backlog = Backlog()
    backlog.sample(10.0, {P0: 100, P1: 7})
    assert backlog.waiting({P0: 100}) == 0
    assert backlog.age_s({P0: 100}, now=20.0) == 0.0


def test_forgetting_drops_the_samples_of_a_former_assignment() -> None:
    backlog = Backlog()
    backlog.sample(10.0, {P0: 100})
    backlog.forget()
    assert backlog.waiting({P0: 0}) is None
