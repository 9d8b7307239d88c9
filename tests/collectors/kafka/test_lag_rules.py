from collections import deque

import pytest

from collectors.kafka.lag_rules import (
    CommitSample,
    EndOffsetPoint,
    EndOffsetTable,
    EvaluationSettings,
    GroupStatus,
    MaxLag,
    PartitionEvaluation,
    PartitionStatus,
    evaluate_group,
    evaluate_partition,
    interpolated_time_lag,
    offset_lag,
    should_record,
    was_caught_up_recently,
)

START = 1000.0
STEP = 10.0


def samples(offsets: list[int], lags: list[int], start: float = START, step: float = STEP):
    assert len(offsets) == len(lags)
    return [
        CommitSample(time=start + i * step, offset=o, lag=lag)
        for i, (o, lag) in enumerate(zip(offsets, lags, strict=True))
    ]


def last_time(window: list[CommitSample]) -> float:
    return window[-1].time


MOVING = [100 + 10 * i for i in range(10)]


# --- offset lag ---------------------------------------------------------------------------


def test_offset_lag_is_end_minus_committed():
    assert offset_lag(150, 100) == 50
    assert offset_lag(100, 100) == 0


def test_offset_lag_never_negative():
    assert offset_lag(100, 250) == 0


def test_offset_lag_is_none_without_a_commit():
    assert offset_lag(100, None) is None
    assert offset_lag(100, -1) is None
    assert offset_lag(-1, 10) is None


def test_caught_up_recently_from_recent_end_offsets():
    assert was_caught_up_recently([90, 100, 120], committed=100)
    assert not was_caught_up_recently([110, 120], committed=100)
    assert was_caught_up_recently([101], committed=100, allowed_lag=1)


# --- partition rules ----------------------------------------------------------------------


def test_no_samples_is_ok_and_incomplete():
    result = evaluate_partition([], now=START)
    assert result.status is PartitionStatus.OK
    assert result.complete == 0
    assert result.start is None and result.end is None


def test_lag_within_allowed_is_ok_whatever_the_window_looks_like():
    window = samples([500] * 10, [3] * 10)
    settings = EvaluationSettings(allowed_lag=3)
    result = evaluate_partition(window, now=last_time(window) + 500, settings=settings)
    assert result.status is PartitionStatus.OK
    assert result.current_lag == 3


def test_stop_when_silence_outlasts_the_window_span():
    window = samples(MOVING, [50 + i for i in range(10)])
    span = window[-1].time - window[0].time
    just_inside = evaluate_partition(window, now=last_time(window) + span)
    assert just_inside.status is not PartitionStatus.STOP
    stopped = evaluate_partition(window, now=last_time(window) + span + 1)
    assert stopped.status is PartitionStatus.STOP
    assert "no new offset" in stopped.reason


def test_same_offset_seen_on_every_look_counts_as_stopped():
    # Re-committing the same offset is invisible, so the consumer looks stopped.
    window = samples([500] * 10, [10 + i for i in range(10)])
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.STOP


def test_stop_is_held_back_when_caught_up_recently():
    window = samples([500] * 10, [10 + i for i in range(10)])
    result = evaluate_partition(window, now=last_time(window), caught_up_recently=True)
    assert result.status is PartitionStatus.STALL


def test_stop_is_held_back_when_the_newest_sample_had_no_lag():
    # The end offset moved after the last look; give the consumer time to commit.
    window = samples([500] * 10, [0] * 10)
    result = evaluate_partition(window, now=last_time(window) + 1000, current_lag=7)
    assert result.status is PartitionStatus.OK
    assert result.current_lag == 7


def test_rewind_not_recovered():
    window = samples([100, 110, 120, 130, 140, 60, 70, 80, 90, 100], [5] * 10)
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.REWIND
    assert "140" in result.reason


def test_rewind_wins_over_an_earlier_zero_lag():
    window = samples([100, 110, 120, 130, 140, 60, 70, 80, 90, 100], [0] + [5] * 9)
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.REWIND


def test_rewind_that_recovered_is_not_a_rewind():
    window = samples(
        [100, 110, 120, 130, 140, 60, 90, 120, 150, 160],
        [20, 20, 20, 20, 20, 90, 70, 50, 30, 25],
    )
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.OK


def test_rewind_is_reported_before_the_window_is_full():
    window = samples([100, 110, 50], [5, 5, 60])
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.REWIND
    assert result.complete == pytest.approx(0.3)


def test_any_sample_within_allowed_lag_makes_a_stall_like_window_ok():
    lags = [0] + [10 + i for i in range(9)]
    window = samples([500] * 10, lags)
    result = evaluate_partition(window, now=last_time(window), caught_up_recently=True)
    assert result.status is PartitionStatus.OK


def test_allowed_lag_counts_as_no_lag_in_the_window():
    window = samples([500] * 10, [2] + [9] * 9)
    settings = EvaluationSettings(allowed_lag=2)
    result = evaluate_partition(
        window, now=last_time(window), settings=settings, caught_up_recently=True
    )
    assert result.status is PartitionStatus.OK


def test_warn_when_lag_never_decreases_and_grows():
    window = samples(MOVING, [10, 10, 12, 12, 15, 15, 15, 18, 20, 25])
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.WARN
    assert "10 -> 25" in result.reason


def test_lag_that_decreases_once_is_not_a_warning():
    window = samples(MOVING, [10, 10, 12, 12, 15, 14, 15, 18, 20, 25])
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.OK


def test_flat_lag_with_moving_offset_is_not_a_warning():
    window = samples(MOVING, [10] * 10)
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.OK


def test_trends_wait_for_a_full_window_by_default():
    window = samples([100, 110, 120], [10, 20, 30])
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.OK
    assert result.complete == pytest.approx(0.3)
    assert "not full enough" in result.reason
    eager = EvaluationSettings(min_complete=0.0)
    assert evaluate_partition(window, last_time(window), eager).status is PartitionStatus.WARN


def test_single_sample_is_not_stopped_until_the_window_fills():
    window = samples([100], [10])
    assert evaluate_partition(window, now=START + 600).status is PartitionStatus.OK
    eager = EvaluationSettings(min_complete=0.0)
    assert evaluate_partition(window, START + 600, eager).status is PartitionStatus.STOP


def test_only_the_last_window_samples_are_judged():
    offsets = [50 + 10 * i for i in range(15)]
    lags = [0] * 5 + [10, 10, 12, 12, 15, 15, 15, 18, 20, 25]
    window = samples(offsets, lags)
    result = evaluate_partition(window, now=last_time(window))
    assert result.status is PartitionStatus.WARN
    assert result.start == window[5]
    assert result.end == window[-1]
    assert result.complete == 1


def test_any_sequence_of_samples_is_accepted():
    window = deque(samples([*MOVING, 200, 210], [10] * 2 + [10 + i for i in range(10)]))
    result = evaluate_partition(window, now=window[-1].time)
    assert result.status is PartitionStatus.WARN
    assert result.start == window[2]


def test_min_distance_skips_samples_that_come_too_fast():
    raw = samples([100 + 5 * i for i in range(20)], [30 + i for i in range(20)], step=5.0)
    settings = EvaluationSettings(min_distance_s=10.0)
    filtered: list[CommitSample] = []
    for sample in raw:
        if should_record(filtered[-1] if filtered else None, sample, settings):
            filtered.append(sample)
    assert len(filtered) == 10
    now = raw[-1].time
    from_raw = evaluate_partition(raw, now, settings)
    assert from_raw.current_lag == raw[-1].lag  # the freshest look still gives the lag
    lag = raw[-1].lag
    from_filtered = evaluate_partition(filtered, now, settings, current_lag=lag)
    assert from_filtered == from_raw
    half = evaluate_partition(raw[:10], now, settings)
    assert half.complete == pytest.approx(0.5)


def test_should_record_refuses_out_of_order_samples():
    settings = EvaluationSettings()
    newest = CommitSample(time=100.0, offset=5, lag=0)
    assert should_record(None, newest, settings)
    assert not should_record(newest, CommitSample(time=100.0, offset=6, lag=0), settings)
    assert not should_record(newest, CommitSample(time=float("nan"), offset=6, lag=0), settings)


def test_settings_reject_nonsense():
    for bad in (
        {"window": 0},
        {"allowed_lag": -1},
        {"min_distance_s": float("inf")},
        {"min_complete": 1.5},
    ):
        with pytest.raises(ValueError):
            EvaluationSettings(**bad)


# --- group rollup -------------------------------------------------------------------------


def evaluation(status: PartitionStatus, lag: int, complete: float = 1.0) -> PartitionEvaluation:
    return PartitionEvaluation(status, complete, lag, None, None, "test")


def test_stop_partition_makes_the_group_err():
    group = evaluate_group(
        {
            ("orders", 0): evaluation(PartitionStatus.OK, 0),
            ("orders", 1): evaluation(PartitionStatus.WARN, 5),
            ("orders", 2): evaluation(PartitionStatus.STOP, 7),
        }
    )
    assert group.status is GroupStatus.ERR


@pytest.mark.parametrize("status", [PartitionStatus.STALL, PartitionStatus.REWIND])
def test_stall_and_rewind_make_the_group_err(status):
    group = evaluate_group({("t", 0): evaluation(status, 1)})
    assert group.status is GroupStatus.ERR


def test_warn_only_makes_the_group_warn():
    group = evaluate_group(
        {("t", 0): evaluation(PartitionStatus.WARN, 3), ("t", 1): evaluation(PartitionStatus.OK, 0)}
    )
    assert group.status is GroupStatus.WARN


def test_group_totals_and_max_lag():
    group = evaluate_group(
        {
            ("payments", 1): evaluation(PartitionStatus.OK, 40),
            ("orders", 0): evaluation(PartitionStatus.WARN, 100, complete=0.5),
            ("orders", 3): evaluation(PartitionStatus.OK, 100),
            ("orders", 2): evaluation(PartitionStatus.STALL, 60, complete=0.9),
        }
    )
    assert group.total_lag == 300
    assert group.max_lag == MaxLag("orders", 0, 100)
    assert group.partition_count == 4
    assert group.complete == pytest.approx(0.5)
    assert [(r.topic, r.partition) for r in group.non_ok_partitions] == [
        ("orders", 0),
        ("orders", 2),
    ]
    assert group.non_ok_partitions[1].evaluation.status is PartitionStatus.STALL


def test_healthy_group_and_unknown_group():
    healthy = evaluate_group({("t", 0): evaluation(PartitionStatus.OK, 0)})
    assert healthy.status is GroupStatus.OK
    assert healthy.non_ok_partitions == ()
    unknown = evaluate_group({})
    assert unknown.status is GroupStatus.NOTFOUND
    assert unknown.max_lag is None


def test_evaluating_500_groups_of_50_partitions_finishes():
    settings = EvaluationSettings()
    windows = [
        samples(MOVING, [10, 10, 12, 12, 15, 14, 15, 18, 20, 25]),
        samples(MOVING, [10, 10, 12, 12, 15, 15, 15, 18, 20, 25]),
        samples([500] * 10, [10 + i for i in range(10)]),
        samples(MOVING, [0] * 10),
    ]
    now = windows[0][-1].time
    statuses = set()
    for group in range(500):
        partitions = {
            ("topic", p): evaluate_partition(windows[(group + p) % 4], now, settings)
            for p in range(50)
        }
        statuses.add(evaluate_group(partitions).status)
    assert statuses == {GroupStatus.ERR}


# --- time lag -----------------------------------------------------------------------------


def table_of(*points: tuple[float, int], max_points: int = 60) -> EndOffsetTable:
    table = EndOffsetTable(max_points)
    for time, offset in points:
        table.add(EndOffsetPoint(time, offset))
    return table


def test_interpolates_between_neighbours():
    table = table_of((100, 0), (200, 1000), (300, 3000))
    assert table.estimate_time(500) == pytest.approx(150)
    assert table.estimate_time(2000) == pytest.approx(250)
    assert table.estimate_time(1000) == pytest.approx(200)


def test_extrapolates_beyond_the_newest_and_before_the_oldest():
    table = table_of((100, 1000), (200, 2000), (300, 4000))
    # overall trend: 3000 offsets in 200 s
    assert table.estimate_time(5500) == pytest.approx(400)
    assert table.estimate_time(250) == pytest.approx(50)


def test_fewer_than_two_distinct_offsets_gives_no_estimate():
    assert table_of().estimate_time(10) is None
    assert table_of((100, 10)).estimate_time(10) is None
    assert table_of((100, 10), (200, 10)).estimate_time(5) is None


def test_flat_tail_keeps_its_start_and_moves_its_end():
    table = table_of((0, 100), (10, 200), (20, 200), (30, 200), (40, 200))
    assert table.points() == (
        EndOffsetPoint(0, 100),
        EndOffsetPoint(10, 200),
        EndOffsetPoint(40, 200),
    )
    # The record at offset 200 was written after the end offset was last seen at 200.
    assert table.estimate_time(200) == pytest.approx(40)
    table.add(EndOffsetPoint(50, 300))
    # Writing resumed after the quiet spell: offset 250 is dated inside (40, 50).
    assert table.estimate_time(250) == pytest.approx(45)


def test_table_ignores_stale_points_and_restarts_when_offsets_go_back():
    table = table_of((10, 100), (20, 200))
    table.add(EndOffsetPoint(15, 300))
    assert len(table) == 2
    table.add(EndOffsetPoint(30, 50))
    assert table.points() == (EndOffsetPoint(30, 50),)


def test_table_is_bounded():
    table = table_of(*[(float(i), i * 10) for i in range(100)], max_points=5)
    assert len(table) == 5
    assert table.points()[0] == EndOffsetPoint(95.0, 950)


def test_time_lag_from_interpolation():
    table = table_of((100, 1000), (200, 2000), (300, 4000))
    assert interpolated_time_lag(table, committed=1500, end_offset=4000, now=320) == 170


def test_time_lag_is_zero_when_caught_up():
    table = table_of((100, 1000), (200, 2000))
    assert interpolated_time_lag(table, committed=2000, end_offset=2000, now=999) == 0
    assert interpolated_time_lag(EndOffsetTable(), committed=5, end_offset=5, now=999) == 0


def test_time_lag_is_none_without_enough_points_or_commit():
    assert interpolated_time_lag(table_of((100, 10)), committed=5, end_offset=10, now=200) is None
    table = table_of((100, 1000), (200, 2000))
    assert interpolated_time_lag(table, committed=-1, end_offset=2000, now=300) is None


def test_time_lag_is_never_negative():
    table = table_of((100, 1000), (200, 2000))
    # committed beyond the table: the estimate lands after "now"
    assert interpolated_time_lag(table, committed=2500, end_offset=3000, now=210) == 0
