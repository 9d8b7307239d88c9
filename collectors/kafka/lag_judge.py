"""Judging a look with Burrow's rules (collectors/kafka/lag_rules.py): per partition its
offset lag, its time lag (exact from the index, else interpolated) and its status over
the window of the last looks, which live in memory; per group the worst of them."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from collectors.kafka.lag_health import Health, HealthSettings, HealthTracker, SlowestPartition
from collectors.kafka.lag_look import ClusterLook, GroupLook, Key, Member
from collectors.kafka.lag_rules import (
    CommitSample,
    EndOffsetPoint,
    EndOffsetTable,
    EvaluationSettings,
    GroupEvaluation,
    PartitionEvaluation,
    evaluate_group,
    evaluate_partition,
    interpolated_time_lag,
    offset_lag,
    was_caught_up_recently,
)

END_OFFSET_POINTS = 60  # per partition, for interpolation

METHOD_INDEX = "index"
METHOD_INTERPOLATED = "interpolated"
METHOD_CAUGHT_UP = "caught-up"


@dataclass(slots=True)
class PartitionRow:
    topic: str
    partition: int
    committed: int
    end: int | None
    begin: int | None
    lag: int | None
    time_lag_s: float | None
    time_lag_method: str | None
    owner: Member | None
    evaluation: PartitionEvaluation

    def as_json(self) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed_offset": self.committed,
            "end_offset": self.end,
            "begin_offset": self.begin,
            "lag": self.lag,
            "time_lag_s": None if self.time_lag_s is None else round(self.time_lag_s, 3),
            "time_lag_method": self.time_lag_method,
            "owner": None if self.owner is None else self.owner.as_json(),
            "status": ev.status.value,
            "reason": ev.reason,
            "complete": round(ev.complete, 3),
            "start": _sample_json(ev.start),
            "end": _sample_json(ev.end),
        }


def _sample_json(sample: CommitSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {"offset": sample.offset, "lag": sample.lag, "timestamp": int(sample.time * 1000)}


@dataclass(slots=True)
class GroupResult:
    look: GroupLook
    evaluation: GroupEvaluation  # Burrow's rules alone
    partitions: list[PartitionRow]
    health: Health  # what is shown: Burrow's verdict, time-lag thresholds, hysteresis

    @property
    def max_time_lag(self) -> PartitionRow | None:
        return slowest_of(self.partitions)


def slowest_of(rows: list[PartitionRow]) -> PartitionRow | None:
    """The partition with the largest known time lag (None when no time lag is known)."""
    timed = [row for row in rows if row.time_lag_s is not None]
    return max(timed, key=lambda row: row.time_lag_s or 0.0) if timed else None


ExactTimes = dict[tuple[str, int, int], int]  # (topic, partition, committed) -> record ms


class LagJudge:
    """The in-memory state of one cluster's evaluation: windows and end-offset tables."""

    def __init__(self, settings: EvaluationSettings, health: HealthSettings | None = None) -> None:
        self.settings = settings
        self.health = HealthTracker(health or HealthSettings())
        self.windows: dict[tuple[str, str, int], deque[CommitSample]] = {}
        self.end_tables: dict[Key, EndOffsetTable] = {}
        self.recent_ends: dict[Key, deque[int]] = {}

    def observe_end_offsets(self, now: float, end_offsets: dict[Key, int]) -> None:
        for key, end in end_offsets.items():
            table = self.end_tables.get(key)
            if table is None:
                table = self.end_tables[key] = EndOffsetTable(END_OFFSET_POINTS)
            table.add(EndOffsetPoint(now, end))
            recent = self.recent_ends.get(key)
            if recent is None:
                recent = self.recent_ends[key] = deque(maxlen=self.settings.window)
            recent.append(end)

    def judge(self, look: ClusterLook, exact: ExactTimes) -> list[GroupResult]:
        now = look.time
        self.observe_end_offsets(now, look.end_offsets)
        results: list[GroupResult] = []
        live_windows: set[tuple[str, str, int]] = set()
        alive_states = ("Stable", "CompletingRebalance", "PreparingRebalance")
        for group in look.groups:
            evaluations: dict[Key, PartitionEvaluation] = {}
            rows: list[PartitionRow] = []
            group_alive = group.state in alive_states
            for key in sorted(group.committed):
                end = look.end_offsets.get(key)
                if end is None:
                    continue  # the topic or partition is gone
                committed = group.committed[key]
                lag = offset_lag(end, committed)
                if lag is None:
                    continue
                window_key = (group.group_id, key[0], key[1])
                live_windows.add(window_key)
                window = self.windows.get(window_key)
                if window is None:
                    window = self.windows[window_key] = deque(maxlen=self.settings.window)
                window.append(CommitSample(now, committed, lag))
                owner = group.owners.get(key)
                evaluation = evaluate_partition(
                    window,
                    now,
                    self.settings,
                    was_caught_up_recently(
                        self.recent_ends.get(key, ()), committed, self.settings.allowed_lag
                    ),
                    current_lag=lag,
                    consumer_alive=group_alive and owner is not None,
                )
                evaluations[key] = evaluation
                time_lag, method = self._time_lag(key, committed, end, lag, now, exact)
                rows.append(
                    PartitionRow(
                        key[0], key[1], committed, end, look.begin_offsets.get(key), lag,
                        time_lag, method, owner, evaluation,
                    )
                )  # fmt: skip
            burrow = evaluate_group(evaluations)
            slowest = slowest_of(rows)
            health = self.health.judge(
                group.group_id,
                now,
                burrow,
                None
                if slowest is None
                else SlowestPartition(slowest.topic, slowest.partition, slowest.time_lag_s or 0.0),
            )
            results.append(GroupResult(group, burrow, rows, health))
        self.health.forget_all_but({group.group_id for group in look.groups})
        for gone in self.windows.keys() - live_windows:
            del self.windows[gone]
        for key in self.end_tables.keys() - look.end_offsets.keys():
            del self.end_tables[key]
            self.recent_ends.pop(key, None)
        return results

    def _time_lag(
        self, key: Key, committed: int, end: int, lag: int, now: float, exact: ExactTimes
    ) -> tuple[float | None, str | None]:
        if lag <= 0:
            return 0.0, METHOD_CAUGHT_UP
        written_ms = exact.get((key[0], key[1], committed))
        if written_ms is not None:
            return max(0.0, now - written_ms / 1000), METHOD_INDEX
        table = self.end_tables.get(key)
        estimate = None if table is None else interpolated_time_lag(table, committed, end, now)
        if estimate is None or not math.isfinite(estimate):
            return None, None
        return estimate, METHOD_INTERPOLATED
