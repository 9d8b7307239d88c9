"""The status a person sees for a consumer group: Burrow's verdict, time-lag thresholds and
hysteresis, explained in words (pure; collectors/kafka/lag.py feeds it one look at a time).

Burrow judges offsets only. A group that falls 28 s behind for a few seconds every minute
keeps committing and catches up in between, so every window ends OK although its readers
see stale data. Two rules on top of Burrow's make the status match the lag chart:

Time-lag thresholds
    The group's largest time lag of this look is compared with ``warn_s`` and ``err_s``
    (per group, with defaults): at or over ``warn_s`` is WARN, at or over ``err_s`` ERR.
    Either may be off (None). The status of the look is the worse of Burrow's and this.

Hysteresis
    A worse status shows at once; a better one only once nothing as bad has been seen for
    ``hold_s``. So a group that breaches its threshold every minute stays WARN instead of
    flipping WARN/OK at each look, and the status history records one change, not dozens.
    NOTFOUND (no partitions) is shown as it comes and clears what was held.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from collectors.kafka.lag_rules import GroupEvaluation, GroupStatus

SEVERITY = {GroupStatus.OK: 0, GroupStatus.WARN: 1, GroupStatus.ERR: 2}
BY_SEVERITY = (GroupStatus.OK, GroupStatus.WARN, GroupStatus.ERR)
LISTED_PARTITIONS = 3  # in the explanation; the group page lists every partition


@dataclass(frozen=True, slots=True)
class TimeLagThresholds:
    warn_s: float | None = 10.0
    err_s: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("warn_s", "err_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a number of seconds above 0, or off")
        if self.warn_s is not None and self.err_s is not None and self.err_s < self.warn_s:
            raise ValueError("the error threshold must not be below the warning threshold")

    def judge(self, time_lag_s: float | None) -> GroupStatus:
        if time_lag_s is None:
            return GroupStatus.OK
        if self.err_s is not None and time_lag_s >= self.err_s:
            return GroupStatus.ERR
        if self.warn_s is not None and time_lag_s >= self.warn_s:
            return GroupStatus.WARN
        return GroupStatus.OK

    def describe(self) -> str:
        def shown(value: float | None) -> str:
            return "off" if value is None else f"{value:g} s"

        return f"warning at {shown(self.warn_s)}, error at {shown(self.err_s)}"


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Thresholds (per group: an exact id or a shell pattern such as ``billing-*``) and hold."""

    default: TimeLagThresholds = TimeLagThresholds()
    per_group: Mapping[str, TimeLagThresholds] = field(default_factory=dict)
    hold_s: float = 120.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.hold_s) and self.hold_s >= 0):
            raise ValueError("hold_s must be a number of seconds, at least 0")

    def thresholds_for(self, group_id: str) -> TimeLagThresholds:
        exact = self.per_group.get(group_id)
        if exact is not None:
            return exact
        for pattern, thresholds in self.per_group.items():
            if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(group_id, pattern):
                return thresholds
        return self.default


@dataclass(frozen=True, slots=True)
class SlowestPartition:
    topic: str
    partition: int
    time_lag_s: float


@dataclass(frozen=True, slots=True)
class Health:
    """What the group's page says about its status, and why."""

    status: GroupStatus  # shown
    look_status: GroupStatus  # this look alone
    burrow_status: GroupStatus
    time_lag_status: GroupStatus
    thresholds: TimeLagThresholds
    held_until: float | None  # when the shown status, worse than this look's, may clear
    explanation: str

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "look_status": self.look_status.value,
            "burrow_status": self.burrow_status.value,
            "time_lag_status": self.time_lag_status.value,
            "time_lag_warn_s": self.thresholds.warn_s,
            "time_lag_err_s": self.thresholds.err_s,
            "held_until_ms": None if self.held_until is None else int(self.held_until * 1000),
            "explanation": self.explanation,
        }


@dataclass(slots=True)
class _Memory:
    last_seen: dict[GroupStatus, float] = field(default_factory=dict)  # WARN/ERR -> when


class HealthTracker:
    """Remembers, per group, when it was last WARN or worse; forgets groups that are gone."""

    def __init__(self, settings: HealthSettings) -> None:
        self.settings = settings
        self._memory: dict[str, _Memory] = {}

    def judge(
        self,
        group_id: str,
        now: float,
        burrow: GroupEvaluation,
        slowest: SlowestPartition | None,
    ) -> Health:
        thresholds = self.settings.thresholds_for(group_id)
        burrow_status = burrow.status
        time_status = thresholds.judge(None if slowest is None else slowest.time_lag_s)
        if burrow_status is GroupStatus.NOTFOUND:
            self._memory.pop(group_id, None)
            return Health(
                GroupStatus.NOTFOUND, GroupStatus.NOTFOUND, burrow_status, time_status,
                thresholds, None, "no committed offsets on partitions that exist",
            )  # fmt: skip
        look_status = BY_SEVERITY[max(SEVERITY[burrow_status], SEVERITY[time_status])]
        memory = self._memory.setdefault(group_id, _Memory())
        for status in (GroupStatus.WARN, GroupStatus.ERR):
            if SEVERITY[look_status] >= SEVERITY[status]:
                memory.last_seen[status] = now
        shown, held_until = look_status, None
        for status in (GroupStatus.ERR, GroupStatus.WARN):
            seen = memory.last_seen.get(status)
            if SEVERITY[status] <= SEVERITY[look_status] or seen is None:
                continue
            if now - seen < self.settings.hold_s:
                shown, held_until = status, seen + self.settings.hold_s
                break
        words = _explain(
            shown, look_status, burrow, time_status, slowest, thresholds, held_until, memory, now
        )
        return Health(shown, look_status, burrow_status, time_status, thresholds, held_until, words)

    def forget_all_but(self, group_ids: set[str]) -> None:
        for gone in self._memory.keys() - group_ids:
            del self._memory[gone]


def _explain(
    shown: GroupStatus,
    look_status: GroupStatus,
    burrow: GroupEvaluation,
    time_status: GroupStatus,
    slowest: SlowestPartition | None,
    thresholds: TimeLagThresholds,
    held_until: float | None,
    memory: _Memory,
    now: float,
) -> str:
    """One paragraph: the time lag against its thresholds, Burrow's verdict, any hold."""
    parts: list[str] = []
    if slowest is None:
        parts.append(f"No time lag is known yet ({thresholds.describe()}).")
    elif time_status is GroupStatus.OK:
        parts.append(
            f"Time lag {_seconds(slowest.time_lag_s)} at most "
            f"({slowest.topic}[{slowest.partition}]), under the thresholds: "
            f"{thresholds.describe()}."
        )
    else:
        level = "error" if time_status is GroupStatus.ERR else "warning"
        parts.append(
            f"Time lag {_seconds(slowest.time_lag_s)} on {slowest.topic}[{slowest.partition}] "
            f"is at or over the {level} threshold ({thresholds.describe()})."
        )
    if burrow.status is GroupStatus.OK:
        parts.append("Burrow's offset rules: every partition OK.")
    else:
        listed = [
            f"{r.topic}[{r.partition}] {r.evaluation.status.value}, {r.evaluation.reason}"
            for r in burrow.non_ok_partitions[:LISTED_PARTITIONS]
        ]
        more = len(burrow.non_ok_partitions) - len(listed)
        tail = f"; and {more} more partition(s)" if more > 0 else ""
        parts.append(f"Burrow's offset rules: {burrow.status.value}: {'; '.join(listed)}{tail}.")
    if held_until is not None and shown is not look_status:
        hold_s = held_until - memory.last_seen[shown]
        parts.append(
            f"Held at {shown.value}: this look alone is {look_status.value}; {shown.value} was "
            f"last seen {_seconds(now - memory.last_seen[shown])} ago, and the status improves "
            f"after {_seconds(hold_s)} without it."
        )
    return " ".join(parts)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"
