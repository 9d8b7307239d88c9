"""One saga as a Gantt chart: a bar per step's forward work and per compensation, placed on
a time axis with ticks, and the step that failed it (pure: computed from the saga state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.saga_rules import Outcome
from collectors.saga_state import SagaState, StepProgress, StepRecord
from collectors.sagas import parse_event_key
from console.web import urls


def event_link(key: str) -> str | None:
    coordinates = parse_event_key(key)
    if coordinates is None:
        return None
    return urls.event(*coordinates)


@dataclass
class Bar:
    """One row of the Gantt: a step's forward work or its compensation."""

    kind: str  # forward | compensation
    step: str
    outcome: str  # succeeded | failed | pending | info | compensation | not_seen
    records: list[StepRecord] = field(default_factory=list)
    start_ms: int | None = None
    end_ms: int | None = None
    wait_from_ms: int | None = None
    href: str | None = None
    left: float = 0.0
    width: float = 0.0
    wait_left: float = 0.0
    wait_width: float = 0.0

    @property
    def label(self) -> str:
        return self.step if self.kind == "forward" else f"undo {self.step}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "step": self.step,
            "outcome": self.outcome,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "waited_ms": None
            if self.wait_from_ms is None or self.start_ms is None
            else self.start_ms - self.wait_from_ms,
            "event": self.href,
            "events": [event_link(record.event_key) for record in self.records],
        }


@dataclass
class Timeline:
    bars: list[Bar]
    start_ms: int
    end_ms: int
    ticks: list[tuple[float, float]]  # (percent, seconds since start)
    failure: StepRecord | None


MIN_BAR_PERCENT = 0.6


def _compensation_target(
    record: StepRecord, forward: Mapping[str, Bar], progress: Sequence[StepProgress]
) -> str:
    """The step a compensation undid: its own step name, else the step whose first
    compensation it was (saga_rules attributes unnamed compensations)."""
    if record.step in forward:
        return record.step
    for step in progress:
        if step.compensated_ms == record.timestamp_ms:
            return step.name
    return record.step


def build_timeline(
    state: SagaState, progress: Sequence[StepProgress], now_ms: int, open_ended: bool
) -> Timeline:
    forward: dict[str, Bar] = {
        step.name: Bar("forward", step.name, "not_seen") for step in progress
    }
    records = list(state.steps)
    for record in records:
        if record.outcome is not Outcome.COMPENSATION:
            forward.setdefault(record.step, Bar("forward", record.step, "info")).records.append(
                record
            )
    compensations: dict[str, Bar] = {}
    for record in records:
        if record.outcome is Outcome.COMPENSATION:
            target = _compensation_target(record, forward, progress)
            compensations.setdefault(target, Bar("compensation", target, "compensation"))
            compensations[target].records.append(record)
    by_name = {step.name: step for step in progress}
    failure: StepRecord | None = None
    for bar in forward.values():
        if not bar.records:
            continue
        step = by_name.get(bar.step)
        decisive = bar.records[-1]
        if step is not None and step.failure_stands:
            bar.outcome = "failed"
            decisive = [r for r in bar.records if r.outcome is Outcome.FAILED][-1]
            if failure is None or decisive.timestamp_ms < failure.timestamp_ms:
                failure = decisive
        elif step is not None and step.succeeded_ms is not None:
            bar.outcome = "succeeded"
            decisive = [r for r in bar.records if r.outcome is Outcome.SUCCEEDED][-1]
        elif step is not None and step.started_ms is not None:
            bar.outcome = "pending"
        bar.href = event_link(decisive.event_key)
    for bar in compensations.values():
        bar.href = event_link(bar.records[-1].event_key)

    start = state.first_ms
    end = max(state.last_ms, now_ms) if open_ended else state.last_ms
    span = max(end - start, 1)
    times = sorted(record.timestamp_ms for record in records)

    def percent(moment: int) -> float:
        return min(max((moment - start) * 100.0 / span, 0.0), 100.0)

    bars = list(forward.values()) + sorted(
        compensations.values(), key=lambda bar: bar.records[0].timestamp_ms
    )
    for bar in bars:
        if not bar.records:
            continue
        bar.start_ms = bar.records[0].timestamp_ms
        bar.end_ms = bar.records[-1].timestamp_ms
        if bar.outcome == "pending" and open_ended:
            bar.end_ms = end
        earlier = [moment for moment in times if moment < bar.start_ms]
        if earlier:
            bar.wait_from_ms = earlier[-1]
            bar.wait_left = percent(earlier[-1])
            bar.wait_width = percent(bar.start_ms) - bar.wait_left
        bar.left = min(percent(bar.start_ms), 100.0 - MIN_BAR_PERCENT)
        bar.width = max(percent(bar.end_ms) - bar.left, MIN_BAR_PERCENT)
    ticks = [(quarter * 25.0, span * quarter / 4000) for quarter in range(5)]
    return Timeline(bars, start, end, ticks, failure)
