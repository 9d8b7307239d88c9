"""The time axis of a trace: long idle stretches collapsed to a labelled break, ticks on round
times with their unit.

Pure: times are milliseconds from the flow's start, positions are percents of the lane. A
flow that waits 17 s between two bursts of 50 ms would otherwise squeeze every bar into a
sliver; here each idle stretch longer than a share of the span takes a small fixed width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

GAP_MIN_MS = 100.0  # shorter idle stretches are never collapsed
GAP_SHARE = 0.10  # idle stretches longer than this share of the span are collapsed
GAP_WIDTH_PERCENT = 5.0  # the width of one collapsed stretch on the lane
GAPS_MAX_PERCENT = 25.0  # all collapsed stretches together never take more
MIN_TICKS = 6
MIN_TICK_SPACING_PERCENT = 3.0  # a tick closer than this to the previous one is left out
GAP_LABEL_CLEARANCE_PERCENT = 16.0  # gap labels closer than this go on alternate lines

SECOND_MS = 1_000.0
MINUTE_MS = 60_000.0
HOUR_MS = 3_600_000.0
# Round tick intervals in ms: 1-2-5 up to 5 s, then steps a clock reader expects.
TICK_STEPS_MS: tuple[float, ...] = (
    *(m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)),
    10_000, 15_000, 30_000,
    MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS,
    HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, 24 * HOUR_MS,
)  # fmt: skip


@dataclass(frozen=True)
class Gap:
    """A stretch where nothing of the flow happens (no span runs, no record is written)."""

    from_ms: float
    to_ms: float

    @property
    def idle_ms(self) -> float:
        return self.to_ms - self.from_ms


@dataclass(frozen=True)
class Segment:
    """A stretch of time and the part of the lane (percents) it takes."""

    from_ms: float
    to_ms: float
    left: float
    right: float
    collapsed: bool = False


@dataclass(frozen=True)
class Tick:
    ms: float
    left: float  # percent of the lane
    label: str
    minor: bool  # its label may be left out where the lane is narrow


@dataclass(frozen=True)
class Scale:
    """Time → lane position, piecewise linear: collapsed gaps take a small fixed width."""

    segments: tuple[Segment, ...]

    @property
    def from_ms(self) -> float:
        return self.segments[0].from_ms

    @property
    def to_ms(self) -> float:
        return self.segments[-1].to_ms

    def percent(self, ms: float) -> float:
        """Where `ms` falls on the lane, 0-100 (times outside the scale are clamped)."""
        for segment in self.segments:
            if ms <= segment.to_ms:
                span = segment.to_ms - segment.from_ms
                share = (ms - segment.from_ms) / span if span > 0 else 0.0
                return round(segment.left + max(share, 0.0) * (segment.right - segment.left), 3)
        return 100.0

    def visible(self) -> list[Segment]:
        return [s for s in self.segments if not s.collapsed]


def idle_gaps(
    intervals: Iterable[tuple[float, float]],
    from_ms: float,
    to_ms: float,
    share: float = GAP_SHARE,
    min_ms: float = GAP_MIN_MS,
) -> list[Gap]:
    """The stretches of [from_ms, to_ms] that no interval covers and that last longer than
    `share` of the whole (and at least `min_ms`), in time order."""
    threshold = max(min_ms, (to_ms - from_ms) * share)
    gaps: list[Gap] = []
    covered_until = from_ms
    for start, end in sorted(intervals):
        start, end = max(start, from_ms), min(max(end, start), to_ms)
        if end < from_ms or start > to_ms:
            continue
        if start - covered_until > threshold:
            gaps.append(Gap(covered_until, start))
        covered_until = max(covered_until, end)
    if to_ms - covered_until > threshold:
        gaps.append(Gap(covered_until, to_ms))
    return gaps


def broken_scale(from_ms: float, to_ms: float, gaps: Sequence[Gap] = ()) -> Scale:
    """The scale of [from_ms, to_ms] where each gap (inside it, in order, not overlapping)
    takes GAP_WIDTH_PERCENT of the lane (less when there are many) and the rest shares
    the lane in proportion to its length."""
    if to_ms <= from_ms:
        return Scale((Segment(from_ms, from_ms, 0.0, 100.0),))
    gap_width = min(GAP_WIDTH_PERCENT, GAPS_MAX_PERCENT / len(gaps)) if gaps else 0.0
    active_ms = (to_ms - from_ms) - sum(g.idle_ms for g in gaps)
    per_ms = (100.0 - gap_width * len(gaps)) / active_ms if active_ms > 0 else 0.0
    if active_ms <= 0 and gaps:  # all idle: the gaps share the lane
        gap_width = 100.0 / len(gaps)
    segments: list[Segment] = []
    at_ms, at = from_ms, 0.0
    for gap in gaps:
        if gap.from_ms > at_ms:
            end = at + (gap.from_ms - at_ms) * per_ms
            segments.append(Segment(at_ms, gap.from_ms, round(at, 3), round(end, 3)))
            at = end
        segments.append(Segment(gap.from_ms, gap.to_ms, round(at, 3), round(at + gap_width, 3),
                                collapsed=True))  # fmt: skip
        at_ms, at = gap.to_ms, at + gap_width
    if to_ms > at_ms:
        segments.append(Segment(at_ms, to_ms, round(at, 3), 100.0))
    last = segments[-1]
    segments[-1] = Segment(last.from_ms, last.to_ms, last.left, 100.0, last.collapsed)
    return Scale(tuple(segments))


def _tick_times(scale: Scale, step: float) -> list[float]:
    times: list[float] = []
    for segment in scale.visible():
        first = math.ceil(round(segment.from_ms / step, 9))
        last = math.floor(round(segment.to_ms / step, 9))
        times += [n * step for n in range(first, last + 1)]
    return sorted(set(times))


def _spaced(scale: Scale, times: list[float]) -> list[tuple[float, float]]:
    kept: list[tuple[float, float]] = []
    for ms in times:
        left = scale.percent(ms)
        if not kept or left - kept[-1][1] >= MIN_TICK_SPACING_PERCENT:
            kept.append((ms, left))
    return kept


def ticks(scale: Scale, min_count: int = MIN_TICKS) -> list[Tick]:
    """Ticks at multiples of the largest round step that gives at least `min_count` of them
    on the visible (not collapsed) stretches; none inside a collapsed gap."""
    visible_ms = sum(s.to_ms - s.from_ms for s in scale.visible())
    if visible_ms <= 0:
        return [Tick(scale.from_ms, 0.0, format_offset(scale.from_ms, 1.0), minor=False)]
    chosen: tuple[float, list[tuple[float, float]]] | None = None
    for step in reversed(TICK_STEPS_MS):
        if visible_ms / step > 50 * min_count:
            break  # finer steps only crowd the lane
        chosen = (step, _spaced(scale, _tick_times(scale, step)))
        if len(chosen[1]) >= min_count:
            break
    assert chosen is not None  # the coarsest step is never too fine
    step, kept = chosen
    crowded = len(kept) > 8
    largest = kept[-1][0]
    return [
        Tick(ms, left, format_offset(ms, step, largest),
             minor=crowded and round(ms / step) % 2 == 1)
        for ms, left in kept
    ]  # fmt: skip


def label_lines(
    centers: Sequence[float], clearance: float = GAP_LABEL_CLEARANCE_PERCENT
) -> list[int]:
    """The line (0 or 1) of each label centred at these positions (in order), so that two
    labels closer than `clearance` never share a line."""
    lines: list[int] = []
    for n, center in enumerate(centers):
        near = n > 0 and center - centers[n - 1] < clearance
        lines.append(1 - lines[-1] if near else 0)
    return lines


def _decimals(step: float) -> int:
    """How many decimals show every multiple of `step` exactly (at most 6)."""
    for places in range(7):
        if abs(step * 10**places - round(step * 10**places)) < 1e-9:
            return places
    return 6


def format_offset(ms: float, step: float, largest_ms: float = 0.0) -> str:
    """A tick's label, in the unit of its axis: '40 ms', '0.25 ms', '1.5 s', '17.26 s',
    '2 min', '1 h 30 min'. Steps under 100 ms count in ms unless the axis reaches 1 s."""
    if step < 100 and largest_ms < SECOND_MS:
        return f"{ms:.{_decimals(step)}f} ms"
    if step < MINUTE_MS:
        return f"{ms / SECOND_MS:.{_decimals(step / SECOND_MS)}f} s"
    minutes = round(ms / MINUTE_MS)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_duration(ms: float) -> str:
    """A length of time as a person says it: '850 ms', '17.2 s', '3 min 12 s', '2 h 5 min'."""
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < SECOND_MS:
        return f"{ms:.0f} ms"
    if ms < MINUTE_MS:
        return f"{ms / SECOND_MS:.1f} s"
    seconds = round(ms / SECOND_MS)
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    minutes = round(ms / MINUTE_MS)
    return f"{minutes // 60} h {minutes % 60} min"
