"""The trace's time axis: idle gaps, the broken scale, round ticks and their labels."""

from __future__ import annotations

import itertools

import pytest

from console.trace_axis import (
    GAP_WIDTH_PERCENT,
    GAPS_MAX_PERCENT,
    Gap,
    broken_scale,
    format_duration,
    format_offset,
    idle_gaps,
    label_lines,
    ticks,
)


def test_an_idle_stretch_longer_than_the_share_of_the_span_is_a_gap() -> None:
    # two bursts of 50 ms with 17.2 s of nothing between them
    intervals = [(0.0, 30.0), (10.0, 50.0), (17_250.0, 17_300.0)]
    assert idle_gaps(intervals, 0.0, 17_300.0) == [Gap(50.0, 17_250.0)]
    assert idle_gaps(intervals, 0.0, 17_300.0)[0].idle_ms == 17_200.0


def test_short_pauses_and_overlapping_work_are_no_gap() -> None:
    # a long span covers the quiet between the two records
    assert idle_gaps([(0.0, 1_000.0), (100.0, 100.0), (900.0, 900.0)], 0.0, 1_000.0) == []
    # 9 % of the span idle: under the share
    assert idle_gaps([(0.0, 10.0), (100.0, 1_000.0)], 0.0, 1_000.0) == []
    # under GAP_MIN_MS however short the span
    assert idle_gaps([(0.0, 1.0), (60.0, 61.0)], 0.0, 61.0) == []


def test_records_are_points_and_idle_edges_of_a_window_are_gaps() -> None:
    points = [(0.0, 0.0), (5_000.0, 5_000.0), (5_100.0, 5_100.0)]
    assert idle_gaps(points, 0.0, 5_100.0) == [Gap(0.0, 5_000.0)]
    # a zoom window that starts and ends in quiet stretches
    assert idle_gaps([(4_000.0, 4_100.0)], 1_000.0, 9_000.0) == [
        Gap(1_000.0, 4_000.0),
        Gap(4_100.0, 9_000.0),
    ]


def test_a_collapsed_gap_takes_a_fixed_width_and_the_rest_is_proportional() -> None:
    scale = broken_scale(0.0, 17_300.0, [Gap(50.0, 17_250.0)])
    active = 100.0 - GAP_WIDTH_PERCENT
    assert scale.percent(0.0) == 0.0
    assert scale.percent(50.0) == pytest.approx(active / 2, abs=0.01)
    assert scale.percent(17_250.0) == pytest.approx(active / 2 + GAP_WIDTH_PERCENT, abs=0.01)
    assert scale.percent(17_300.0) == 100.0
    # a 40 ms bar: nearly half the lane instead of 0.23 %
    assert scale.percent(50.0) - scale.percent(10.0) == pytest.approx(active * 0.4, abs=0.01)
    assert [s.collapsed for s in scale.segments] == [False, True, False]


def test_many_gaps_together_never_take_more_than_their_cap() -> None:
    gaps = [Gap(n * 1_000.0 + 10, (n + 1) * 1_000.0) for n in range(8)]
    scale = broken_scale(0.0, 8_010.0, gaps)
    collapsed = sum(s.right - s.left for s in scale.segments if s.collapsed)
    assert collapsed == pytest.approx(GAPS_MAX_PERCENT, abs=0.01)
    assert scale.segments[-1].right == 100.0


def test_at_least_six_ticks_on_round_times() -> None:
    for span_ms in (0.8, 7.0, 45.0, 300.0, 5_824.5, 61_000.0, 3 * 3_600_000.0):
        marks = ticks(broken_scale(0.0, span_ms))
        assert len(marks) >= 6, (span_ms, marks)
        steps = {round(b.ms - a.ms, 9) for a, b in itertools.pairwise(marks)}
        assert len(steps) == 1, (span_ms, steps)  # evenly spaced
        assert marks[0].ms == 0.0 and marks[-1].ms <= span_ms
        assert [m.left for m in marks] == sorted(m.left for m in marks)


def test_the_largest_round_step_that_gives_six_ticks_is_chosen() -> None:
    marks = ticks(broken_scale(0.0, 5_824.5))
    assert [m.label for m in marks] == ["0 s", "1 s", "2 s", "3 s", "4 s", "5 s"]
    marks = ticks(broken_scale(0.0, 4_900.0))  # 1 s would give 5: every half second
    assert [m.label for m in marks][:3] == ["0.0 s", "0.5 s", "1.0 s"]
    assert len(marks) == 10
    assert any(m.minor for m in marks) and not marks[0].minor


def test_no_tick_falls_inside_a_collapsed_gap() -> None:
    scale = broken_scale(0.0, 17_300.0, [Gap(50.0, 17_250.0)])
    marks = ticks(scale)
    assert len(marks) >= 6
    assert all(not 50.0 < m.ms < 17_250.0 for m in marks)
    assert any(m.ms < 50 for m in marks) and any(m.ms > 17_250 for m in marks)
    # one unit on the whole axis: seconds, since it reaches 17 s
    assert [m.label for m in marks] == ["0.00 s", "0.02 s", "0.04 s", "17.26 s", "17.28 s",
                                        "17.30 s"]  # fmt: skip


def test_an_empty_span_has_one_tick() -> None:
    assert [m.label for m in ticks(broken_scale(0.0, 0.0))] == ["0 ms"]


@pytest.mark.parametrize(
    ("ms", "step", "label"),
    [
        (40.0, 10.0, "40 ms"),
        (0.25, 0.05, "0.25 ms"),
        (1_500.0, 500.0, "1.5 s"),
        (20_000.0, 5_000.0, "20 s"),
        (17_260.0, 20.0, "17.26 s"),
        (4_620.0, 20.0, "4.62 s"),
        (120_000.0, 60_000.0, "2 min"),
        (5_400_000.0, 1_800_000.0, "1 h 30 min"),
    ],
)
def test_tick_labels_carry_their_unit(ms: float, step: float, label: str) -> None:
    assert format_offset(ms, step, largest_ms=ms) == label


@pytest.mark.parametrize(
    ("ms", "text"),
    [(3.25, "3.2 ms"), (850.0, "850 ms"), (17_200.0, "17.2 s"), (192_000.0, "3 min 12 s"),
     (7_500_000.0, "2 h 5 min")],
)  # fmt: skip
def test_durations_read_as_people_say_them(ms: float, text: str) -> None:
    assert format_duration(ms) == text


def test_labels_of_near_gaps_take_alternate_lines() -> None:
    assert label_lines([10.0, 50.0, 90.0]) == [0, 0, 0]
    assert label_lines([60.0, 66.0, 70.0, 95.0]) == [0, 1, 0, 0]
    assert label_lines([]) == []
