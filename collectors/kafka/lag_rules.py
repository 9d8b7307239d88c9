"""How eventscope decides whether a consumer group is healthy (pure rules; long because each
rule is written out with the explanation below it stands on).

Offset lag
    For each partition, offset lag is the partition's end offset minus the group's committed
    offset, never below zero. A partition the group never committed to has no lag value.

Time lag
    Time lag is how old the oldest record the group has not consumed yet is. When the record at
    the committed offset is not in eventscope's index, the time is estimated from a per-partition
    table of (end offset, time) samples: the committed offset is placed on the line between the
    two samples around it, or on the trend of the whole table when it lies outside. A partition
    whose group is at the end offset has a time lag of 0.

Partition health
    Each partition is judged over a window of its most recent committed-offset samples
    (``window``, 10 by default). A sample is what eventscope saw when it looked: the committed
    offset, the lag at that moment and when it looked. eventscope cannot see a commit that
    repeats the same offset, so a commit is taken to have happened when a new offset is first
    seen. The window may hold one sample per look or only the looks that saw a new offset; the
    rules below give sensible answers for both.

    A partition whose current lag is within ``allowed_lag`` is OK. Otherwise these checks run
    in order and the first that matches decides:

    1. STOP: the time since the newest offset was first seen is longer than the time between
       the oldest sample of the window and that moment. The consumer is not moving this
       partition forward any more. Not reported when the consumer was caught up recently
       (a recent end offset was within the allowed lag of its committed offset, or the newest
       sample had no lag to speak of): a producer that just woke an idle partition must give
       the consumer a moment to commit. Not reported either when the caller knows the
       consumer is still alive (``consumer_alive``: the partition is assigned to a live member
       of the group); an offset that repeats is then taken as a commit that repeats, which
       is what STALL describes.
    2. REWIND: the committed offset went backwards inside the window and the newest offset
       is still below the highest offset committed before it went back. A rewind the consumer
       has since made up is not reported; the next checks decide.
    3. OK: some sample in the window had a lag within the allowed lag, so the consumer kept up
       at some point of the window.
    4. STALL: every sample in the window has the same offset while there is lag.
    5. WARN: the offset moves but the lag never went down from one sample to the next and is
       higher at the end of the window than at its start. The consumer is slower than its
       producers. (Burrow also warns on a lag that stays exactly flat; eventscope does not,
       as a consumer that keeps pace with its producers is not falling behind.)
    6. OK otherwise.

    A partition with no samples is OK with a completeness of 0. STOP, STALL and WARN judge a
    trend, and a short window makes a pause or one slow step look like one: they are only
    reported once the window is at least ``min_complete`` full (the whole window by default;
    0 judges any window, as Burrow does out of the box). REWIND is a fact seen between two
    samples and is reported whatever the completeness. ``min_distance_s`` skips samples taken
    sooner than that after the previous sample kept, as Burrow does with commits that come
    too fast; :func:`should_record` applies the same test before a sample is stored.

Group health
    The group takes the worst status of its partitions: STOP, STALL and REWIND make the group
    ERR, WARN makes it WARN. Completeness is the fraction of partitions whose window is full.
    The group also reports its total lag, the partition with the largest lag and the list of
    partitions that are not OK. A group with no partitions is NOTFOUND.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DEFAULT_SETTINGS",
    "CommitSample",
    "EndOffsetPoint",
    "EndOffsetTable",
    "EvaluationSettings",
    "GroupEvaluation",
    "GroupStatus",
    "MaxLag",
    "PartitionEvaluation",
    "PartitionReport",
    "PartitionStatus",
    "evaluate_group",
    "evaluate_partition",
    "interpolated_time_lag",
    "offset_lag",
    "should_record",
    "was_caught_up_recently",
]


class PartitionStatus(StrEnum):
    OK = "OK"
    WARN = "WARN"
    STOP = "STOP"
    STALL = "STALL"
    REWIND = "REWIND"


class GroupStatus(StrEnum):
    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"
    NOTFOUND = "NOTFOUND"


_ERROR_STATUSES = frozenset({PartitionStatus.STOP, PartitionStatus.STALL, PartitionStatus.REWIND})


@dataclass(frozen=True, slots=True)
class CommitSample:
    """One observation of a partition of a group."""

    time: float  # seconds since the epoch, when sampled
    offset: int  # committed offset
    lag: int  # end offset - committed offset at that time (>= 0)


@dataclass(frozen=True, slots=True)
class EvaluationSettings:
    """Knobs of the partition rules; invalid values raise ValueError when built."""

    window: int = 10  # samples judged per partition
    allowed_lag: int = 0  # a lag up to this counts as "no lag"
    min_distance_s: float = 0.0  # samples closer than this to the previous kept one are skipped
    min_complete: float = 1.0  # fraction of the window needed before STOP/STALL/WARN are judged

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or self.window < 1:
            raise ValueError("window must be a whole number of samples, at least 1")
        if not isinstance(self.allowed_lag, int) or self.allowed_lag < 0:
            raise ValueError("allowed_lag must be a whole number, at least 0")
        if not (math.isfinite(self.min_distance_s) and self.min_distance_s >= 0):
            raise ValueError("min_distance_s must be a finite number of seconds, at least 0")
        if not (0.0 <= self.min_complete <= 1.0):
            raise ValueError("min_complete must be between 0 and 1")


DEFAULT_SETTINGS = EvaluationSettings()


@dataclass(frozen=True, slots=True)
class PartitionEvaluation:
    status: PartitionStatus
    complete: float  # fraction of the window filled, 0..1
    current_lag: int
    start: CommitSample | None  # oldest sample judged
    end: CommitSample | None  # newest sample judged
    reason: str  # which rule decided, and why


@dataclass(frozen=True, slots=True)
class PartitionReport:
    topic: str
    partition: int
    evaluation: PartitionEvaluation


@dataclass(frozen=True, slots=True)
class MaxLag:
    topic: str
    partition: int
    lag: int


@dataclass(frozen=True, slots=True)
class GroupEvaluation:
    status: GroupStatus
    complete: float  # fraction of partitions whose window is full
    total_lag: int
    max_lag: MaxLag | None
    partition_count: int
    non_ok_partitions: tuple[PartitionReport, ...]  # sorted by topic, then partition


# ---------------------------------------------------------------------------------------------
# Offset lag


def offset_lag(end_offset: int, committed: int | None) -> int | None:
    """End offset minus committed offset, never below 0.

    None when nothing is committed, or when either offset is unknown (Kafka reports -1).
    """
    if committed is None or not _is_offset(committed) or not _is_offset(end_offset):
        return None
    return max(0, end_offset - committed)


def was_caught_up_recently(
    recent_end_offsets: Iterable[int], committed: int, allowed_lag: int = 0
) -> bool:
    """True when one of the recent end offsets was within ``allowed_lag`` of ``committed``."""
    return any(end - committed <= allowed_lag for end in recent_end_offsets)


def _is_offset(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# ---------------------------------------------------------------------------------------------
# Partition rules


def should_record(
    newest: CommitSample | None, candidate: CommitSample, settings: EvaluationSettings
) -> bool:
    """Whether a new sample belongs in a partition's window.

    Refuses a sample that is not later than the newest one kept, or that comes sooner than
    ``min_distance_s`` after it. When ``min_distance_s`` is set, :func:`evaluate_partition`
    applies the same test to the window it is given, so filtering first changes nothing.
    """
    if not math.isfinite(candidate.time):
        return False
    if newest is None:
        return True
    elapsed = candidate.time - newest.time
    return elapsed > 0 and elapsed >= settings.min_distance_s


def _samples_to_judge(
    window: Sequence[CommitSample], settings: EvaluationSettings
) -> Sequence[CommitSample]:
    if settings.min_distance_s > 0:
        kept: list[CommitSample] = []
        for sample in window:
            if should_record(kept[-1] if kept else None, sample, settings):
                kept.append(sample)
        window = kept
    size = len(window)
    if size <= settings.window:
        return window
    if isinstance(window, list | tuple):
        return window[size - settings.window :]
    return [window[i] for i in range(size - settings.window, size)]


def _verdict(
    complete: float,
    lag: int,
    first: CommitSample,
    last: CommitSample,
    status: PartitionStatus,
    reason: str,
) -> PartitionEvaluation:
    return PartitionEvaluation(status, complete, lag, first, last, reason)


_OK_NO_SAMPLES = "no committed offset seen yet"
_OK_WITHIN_ALLOWED = "current lag is within the allowed lag"
_OK_KEPT_UP = "the lag was within the allowed lag at some point of the window"
_OK_TOO_FEW = "lag present, but the window is not full enough to judge a trend yet"
_OK_DECREASING = "lag present, but it went down during the window"


def evaluate_partition(
    window: Sequence[CommitSample],
    now: float,
    settings: EvaluationSettings = DEFAULT_SETTINGS,
    caught_up_recently: bool = False,
    *,
    current_lag: int | None = None,
    consumer_alive: bool = False,
) -> PartitionEvaluation:
    """Judge one partition of a group over its window of samples (oldest first).

    ``current_lag`` is the freshest lag known (from the latest end offset); it defaults to
    the lag of the newest sample. ``caught_up_recently`` and ``consumer_alive`` hold STOP
    back, see the module text.
    Only the last ``settings.window`` samples are judged.
    """
    newest_raw_lag = window[-1].lag if len(window) else 0
    lag_now = max(0, newest_raw_lag if current_lag is None else current_lag)
    samples = _samples_to_judge(window, settings)
    count = len(samples)
    if count == 0:
        return PartitionEvaluation(PartitionStatus.OK, 0.0, lag_now, None, None, _OK_NO_SAMPLES)

    complete = min(1.0, count / settings.window)
    first = samples[0]
    last = samples[-1]

    allowed = settings.allowed_lag
    if lag_now <= allowed:
        return _verdict(complete, lag_now, first, last, PartitionStatus.OK, _OK_WITHIN_ALLOWED)

    # One pass over the window collects everything the rules need.
    kept_up = first.lag <= allowed
    all_same_offset = True
    lag_went_down = False
    highest = first.offset
    high_before_rewind: int | None = None
    newest_run_start = first.time  # when the newest offset was first seen
    previous = first
    for i in range(1, count):
        sample = samples[i]
        if sample.lag <= allowed:
            kept_up = True
        if sample.lag < previous.lag:
            lag_went_down = True
        if sample.offset != previous.offset:
            all_same_offset = False
            newest_run_start = sample.time
            if sample.offset < previous.offset:
                high_before_rewind = highest
        if sample.offset > highest:
            highest = sample.offset
        previous = sample

    full_enough = complete >= settings.min_complete

    # 1. STOP
    since_commit = now - newest_run_start
    span = newest_run_start - first.time
    caught_up = caught_up_recently or last.lag <= allowed
    if full_enough and since_commit > span and not caught_up and not consumer_alive:
        return _verdict(
            complete,
            lag_now,
            first,
            last,
            PartitionStatus.STOP,
            f"no new offset for {since_commit:.0f}s, longer than the {span:.0f}s between "
            f"the oldest sample and the newest offset; lag {lag_now}",
        )

    # 2. REWIND
    if high_before_rewind is not None and last.offset < high_before_rewind:
        return _verdict(
            complete,
            lag_now,
            first,
            last,
            PartitionStatus.REWIND,
            f"committed offset went back and is at {last.offset}, still below "
            f"{high_before_rewind} committed before; lag {lag_now}",
        )

    # 3. the consumer kept up at some point
    if kept_up:
        return _verdict(complete, lag_now, first, last, PartitionStatus.OK, _OK_KEPT_UP)
    if not full_enough:
        return _verdict(complete, lag_now, first, last, PartitionStatus.OK, _OK_TOO_FEW)

    # 4. STALL
    if all_same_offset:
        return _verdict(
            complete,
            lag_now,
            first,
            last,
            PartitionStatus.STALL,
            f"offset stays at {last.offset} over the whole window with lag {lag_now}",
        )

    # 5. WARN
    if not lag_went_down and last.lag > first.lag:
        return _verdict(
            complete,
            lag_now,
            first,
            last,
            PartitionStatus.WARN,
            f"offset moves but lag never went down: {first.lag} -> {last.lag}",
        )

    # 6.
    return _verdict(complete, lag_now, first, last, PartitionStatus.OK, _OK_DECREASING)


# ---------------------------------------------------------------------------------------------
# Group rollup


def evaluate_group(
    partitions: Mapping[tuple[str, int], PartitionEvaluation],
) -> GroupEvaluation:
    """Roll partition results up to the group (see the module text).

    ``complete`` follows Burrow: the fraction of partitions whose window is full, not the
    mean of their completeness.
    """
    if not partitions:
        return GroupEvaluation(GroupStatus.NOTFOUND, 0.0, 0, None, 0, ())

    status = GroupStatus.OK
    total_lag = 0
    full_windows = 0
    max_key: tuple[str, int] | None = None
    max_lag = -1
    non_ok: list[PartitionReport] = []
    for key, evaluation in partitions.items():
        lag = evaluation.current_lag
        total_lag += lag
        if evaluation.complete >= 1.0:
            full_windows += 1
        if lag > max_lag or (lag == max_lag and max_key is not None and key < max_key):
            max_key, max_lag = key, lag
        if evaluation.status is PartitionStatus.OK:
            continue
        non_ok.append(PartitionReport(key[0], key[1], evaluation))
        if evaluation.status in _ERROR_STATUSES:
            status = GroupStatus.ERR
        elif status is GroupStatus.OK:
            status = GroupStatus.WARN

    non_ok.sort(key=lambda report: (report.topic, report.partition))
    largest = None if max_key is None else MaxLag(max_key[0], max_key[1], max_lag)
    return GroupEvaluation(
        status=status,
        complete=full_windows / len(partitions),
        total_lag=total_lag,
        max_lag=largest,
        partition_count=len(partitions),
        non_ok_partitions=tuple(non_ok),
    )


# ---------------------------------------------------------------------------------------------
# Time lag


@dataclass(frozen=True, slots=True)
class EndOffsetPoint:
    time: float
    offset: int


class EndOffsetTable:
    """Per-partition bounded table of (end offset, time) samples for time-lag interpolation.

    The table only moves forward: a point no later than the newest is dropped. A point whose
    end offset went backwards means the partition was recreated or truncated, so the old
    history no longer describes its offsets and the table starts over from that point.

    A run of points at the same end offset is kept as two points, when the offset was first
    seen and the latest time it was still there; a new point at that offset moves the second
    one. Why: the record at offset ``o`` was written after the last time the end offset was
    still ``o``. Keeping that moment makes the rising segment that follows a quiet spell start
    when writing resumed, so a record written after the pause is not dated back to its start.
    """

    __slots__ = ("_max_points", "_offsets", "_times")

    def __init__(self, max_points: int = 60) -> None:
        if not isinstance(max_points, int) or max_points < 2:
            raise ValueError("max_points must be at least 2")
        self._max_points = max_points
        self._offsets: list[int] = []
        self._times: list[float] = []

    def __len__(self) -> int:
        return len(self._offsets)

    def points(self) -> tuple[EndOffsetPoint, ...]:
        return tuple(EndOffsetPoint(t, o) for t, o in zip(self._times, self._offsets, strict=True))

    def add(self, point: EndOffsetPoint) -> None:
        time, offset = point.time, point.offset
        if not _is_offset(offset) or not math.isfinite(time):
            return
        offsets, times = self._offsets, self._times
        if offsets:
            if time <= times[-1]:
                return
            if offset < offsets[-1]:
                offsets.clear()
                times.clear()
            elif offset == offsets[-1] and len(offsets) >= 2 and offsets[-2] == offset:
                times[-1] = time
                return
        if len(offsets) >= self._max_points:
            del offsets[0]
            del times[0]
        offsets.append(offset)
        times.append(time)

    def estimate_time(self, offset: int) -> float | None:
        """When the end offset passed ``offset``; None with fewer than 2 distinct offsets.

        Inside the table the two neighbouring points are joined by a line; outside it, the
        line from the oldest to the newest point is extended.
        """
        offsets, times = self._offsets, self._times
        if len(offsets) < 2 or offsets[0] == offsets[-1]:
            return None
        right = bisect_right(offsets, offset)
        if right == len(offsets):
            if offset == offsets[-1]:
                return times[-1]
            return _on_line(offsets[0], times[0], offsets[-1], times[-1], offset)
        if right == 0:
            return _on_line(offsets[0], times[0], offsets[-1], times[-1], offset)
        left = right - 1
        return _on_line(offsets[left], times[left], offsets[right], times[right], offset)


def _on_line(
    left_offset: int, left_time: float, right_offset: int, right_time: float, offset: int
) -> float:
    slope = (right_time - left_time) / (right_offset - left_offset)
    return right_time - (right_offset - offset) * slope


def interpolated_time_lag(
    table: EndOffsetTable, committed: int, end_offset: int, now: float
) -> float | None:
    """Seconds since the oldest unconsumed record was written, estimated from ``table``.

    0 when the group is caught up; None when nothing is committed or the table is too short.
    """
    if not _is_offset(committed) or not math.isfinite(now):
        return None
    if committed >= end_offset:
        return 0.0
    written = table.estimate_time(committed)
    if written is None:
        return None
    return max(0.0, now - written)
