"""One saga instance's state: its step records, each step's progress and the saga's status,
rebuilt from its own events in timestamp order (collectors/saga_rules.py explains the rules
and the statuses). Most of it is `SagaState`, whose status assessment reads as one piece."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from collectors.saga_rules import (
    DEFAULT_STUCK_AFTER_S,
    MAX_KEY_CHARS,
    MAX_NAME_CHARS,
    MAX_PROBLEMS,
    MAX_RECORDS,
    MAX_RULE_TEXT_CHARS,
    MAX_SERVICE_CHARS,
    MAX_STEP_CHARS,
    MAX_TIMESTAMP_MS,
    MAX_TOPIC_CHARS,
    MAX_TYPE_CHARS,
    Outcome,
    SagaDefinition,
    SagaRules,
    SagaStatus,
    StepDefinition,
    clean_text,
)

_STATE_FORMAT = 1


def _clean_ms(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, min(MAX_TIMESTAMP_MS, value))
    if isinstance(value, float) and math.isfinite(value):
        return max(0, min(MAX_TIMESTAMP_MS, int(value)))
    return 0


def _seconds(value: float) -> str:
    return f"{value:g}s"


class SagaEventRef(NamedTuple):
    """What a saga needs of one event (a tuple: the tap's hook makes one per indexed row)."""

    event_key: str
    event_type: str
    topic: str
    timestamp_ms: int
    service: str | None = None


@dataclass
class StepRecord:
    """One event of a saga as the history shows it: what it was and how it was read."""

    event_key: str
    event_type: str
    topic: str
    timestamp_ms: int
    service: str | None
    step: str
    outcome: Outcome
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.event_key,
            "type": self.event_type,
            "topic": self.topic,
            "ts": self.timestamp_ms,
            "service": self.service,
            "step": self.step,
            "outcome": str(self.outcome),
            "rule": self.rule,
        }

    @classmethod
    def from_json(cls, data: object, where: str) -> StepRecord:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object")
        service = data.get("service")
        if service is not None and not isinstance(service, str):
            raise ValueError(f"{where}.service: expected a string or null")
        timestamp = data.get("ts")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise ValueError(f"{where}.ts: expected an integer")
        try:
            outcome = Outcome(str(data.get("outcome")))
        except ValueError:
            raise ValueError(f"{where}.outcome: unknown outcome") from None
        texts = {}
        for name in ("key", "type", "topic", "step", "rule"):
            value = data.get(name)
            if not isinstance(value, str):
                raise ValueError(f"{where}.{name}: expected a string")
            texts[name] = value
        return cls(
            event_key=clean_text(texts["key"], MAX_KEY_CHARS),
            event_type=clean_text(texts["type"], MAX_TYPE_CHARS),
            topic=clean_text(texts["topic"], MAX_TOPIC_CHARS),
            timestamp_ms=_clean_ms(timestamp),
            service=None if service is None else clean_text(service, MAX_SERVICE_CHARS),
            step=clean_text(texts["step"], MAX_STEP_CHARS),
            outcome=outcome,
            rule=clean_text(texts["rule"], MAX_RULE_TEXT_CHARS),
        )


@dataclass
class StepProgress:
    """Where one step of a saga stands (first times per outcome, epoch milliseconds)."""

    name: str
    defined: bool = False
    started_ms: int | None = None
    succeeded_ms: int | None = None
    failed_ms: int | None = None
    compensated_ms: int | None = None
    last_succeeded_ms: int | None = None
    last_failed_ms: int | None = None

    @property
    def first_ms(self) -> int | None:
        times = [t for t in (self.started_ms, self.succeeded_ms, self.failed_ms) if t is not None]
        return min(times, default=None)

    @property
    def failure_stands(self) -> bool:
        """Failed, and not retried successfully afterwards."""
        return self.last_failed_ms is not None and (
            self.last_succeeded_ms is None or self.last_succeeded_ms <= self.last_failed_ms
        )

    @property
    def state(self) -> str:
        if self.compensated_ms is not None:
            return "compensated"
        if self.failure_stands:
            return "failed"
        if self.succeeded_ms is not None:
            return "succeeded"
        if self.started_ms is not None:
            return "started"
        return "not_seen"


@dataclass
class _Assessment:
    status: SagaStatus
    problems: list[str]
    progress: list[StepProgress]


def _sort_key(record: StepRecord) -> tuple[int, str]:
    return (record.timestamp_ms, record.event_key)


@dataclass
class SagaState:
    """One saga instance, rebuilt from its events; stored as JSON and updated per event."""

    saga_id: str
    saga_type: str | None = None
    first_ms: int = 0
    last_ms: int = 0
    steps: list[StepRecord] = field(default_factory=list)
    status: SagaStatus = SagaStatus.RUNNING
    problems: list[str] = field(default_factory=list)

    def apply(self, event: SagaEventRef, rules: SagaRules) -> None:
        """Add one event (any order; the same ``event_key`` twice changes nothing)."""
        self.apply_all([event], rules)

    def apply_all(
        self, events: Iterable[SagaEventRef], rules: SagaRules, *, assess: bool = True
    ) -> None:
        """Add events, then derive steps and status once for all of them.

        ``assess=False`` leaves ``status`` as it was, for a caller that calls ``evaluate``
        next (the tap's batch hook): the assessment is the costly part.
        """
        added = [record for event in events if (record := self._insert(event)) is not None]
        if added:
            self._refresh(rules, added, assess=assess)

    def _insert(self, event: SagaEventRef) -> StepRecord | None:
        """Place the event among the steps; None when its ``event_key`` is already there."""
        timestamp = _clean_ms(getattr(event, "timestamp_ms", 0))
        event_type = clean_text(getattr(event, "event_type", ""), MAX_TYPE_CHARS)
        topic = clean_text(getattr(event, "topic", ""), MAX_TOPIC_CHARS)
        key = clean_text(getattr(event, "event_key", ""), MAX_KEY_CHARS)
        if not key:
            key = f"{topic}@{timestamp}:{event_type}"[:MAX_KEY_CHARS]
        raw_service = getattr(event, "service", None)
        service = None if raw_service is None else clean_text(raw_service, MAX_SERVICE_CHARS)
        if any(record.event_key == key for record in self.steps):
            return None
        if self.steps:
            self.first_ms = min(self.first_ms, timestamp)
            self.last_ms = max(self.last_ms, timestamp)
        else:
            self.first_ms = self.last_ms = timestamp
        record = StepRecord(key, event_type, topic, timestamp, service, "", Outcome.INFO, "")
        position = bisect.bisect_right(self.steps, _sort_key(record), key=_sort_key)
        self.steps.insert(position, record)
        if len(self.steps) > MAX_RECORDS:
            del self.steps[MAX_RECORDS:]
        return record

    def evaluate(
        self,
        now_ms: int,
        rules: SagaRules,
        default_stuck_after_s: float = DEFAULT_STUCK_AFTER_S,
    ) -> SagaStatus:
        """Status at ``now_ms`` including timeouts; also stored in ``status`` and ``problems``."""
        assessment = self._assess(rules, _clean_ms(now_ms), default_stuck_after_s)
        self.status, self.problems = assessment.status, assessment.problems
        return self.status

    def step_progress(self, rules: SagaRules) -> list[StepProgress]:
        """Per step: defined steps in their order, then the others as they appeared."""
        return self._assess(rules, None, DEFAULT_STUCK_AFTER_S).progress

    def reclassify(self, rules: SagaRules) -> None:
        """Read the stored events again with new rules (after a configuration change)."""
        self._refresh(rules)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _STATE_FORMAT,
            "saga_id": self.saga_id,
            "saga_type": self.saga_type,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "status": str(self.status),
            "problems": list(self.problems),
            "steps": [record.to_json() for record in self.steps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> SagaState:
        """Load what ``to_json`` produced (object or JSON text); anything else is ValueError."""
        if isinstance(data, str | bytes):
            try:
                data = orjson.loads(data)
            except (ValueError, RecursionError):
                raise ValueError("saga state: not valid JSON") from None
        if not isinstance(data, Mapping):
            raise ValueError("saga state: expected an object")
        if data.get("format") != _STATE_FORMAT:
            raise ValueError("saga state.format: unsupported format")
        saga_id, saga_type = data.get("saga_id"), data.get("saga_type")
        if not isinstance(saga_id, str):
            raise ValueError("saga state.saga_id: expected a string")
        if saga_type is not None and not isinstance(saga_type, str):
            raise ValueError("saga state.saga_type: expected a string or null")
        times = {}
        for name in ("first_ms", "last_ms"):
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"saga state.{name}: expected an integer")
            times[name] = _clean_ms(value)
        try:
            status = SagaStatus(str(data.get("status")))
        except ValueError:
            raise ValueError("saga state.status: unknown status") from None
        problems = data.get("problems")
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
            raise ValueError("saga state.problems: expected a list of strings")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list):
            raise ValueError("saga state.steps: expected a list")
        records: dict[str, StepRecord] = {}
        for index, item in enumerate(raw_steps[: MAX_RECORDS * 2]):
            record = StepRecord.from_json(item, f"saga state.steps[{index}]")
            records.setdefault(record.event_key, record)
        return cls(
            saga_id=clean_text(saga_id, MAX_KEY_CHARS),
            saga_type=None if saga_type is None else clean_text(saga_type, MAX_NAME_CHARS),
            first_ms=times["first_ms"],
            last_ms=times["last_ms"],
            steps=sorted(records.values(), key=_sort_key)[:MAX_RECORDS],
            status=status,
            problems=[clean_text(p, 500) for p in problems[:MAX_PROBLEMS]],
        )

    # ------------------------------------------------------------------ derivation

    def _refresh(
        self,
        rules: SagaRules,
        added: Sequence[StepRecord] | None = None,
        *,
        assess: bool = True,
    ) -> None:
        """Re-read the events: all of them when the saga type changed, else only ``added``."""
        definition = None
        if rules.definitions:
            definition = next(
                (
                    found
                    for record in self.steps
                    if (found := rules.definition_for(record.event_type, record.topic))
                ),
                None,
            )
        name = definition.name if definition else None
        changed = added is None or name != self.saga_type
        self.saga_type = name
        for record in self.steps if changed or added is None else added:
            classification = rules.classify(record.event_type, record.topic, definition)
            record.step = classification.step
            record.outcome = classification.outcome
            record.rule = classification.rule[:MAX_RULE_TEXT_CHARS]
        if assess:
            assessment = self._assess(rules, None, DEFAULT_STUCK_AFTER_S)
            self.status, self.problems = assessment.status, assessment.problems

    def _assess(
        self, rules: SagaRules, now_ms: int | None, default_stuck_after_s: float
    ) -> _Assessment:
        definition = rules.definition_named(self.saga_type)
        step_defs = {step.name: step for step in definition.steps} if definition else {}
        finals = (
            frozenset(name.casefold() for name in definition.final_event_types)
            if definition
            else frozenset()
        )
        progress: dict[str, StepProgress] = {
            name: StepProgress(name, defined=True) for name in step_defs
        }
        compensations: list[StepRecord] = []
        final_seen = False
        last_outcome: Outcome | None = None
        opening_step: str | None = None
        for record in self.steps:
            if finals and record.event_type.casefold() in finals:
                final_seen = True
            if record.outcome is Outcome.INFO:
                continue
            last_outcome = record.outcome
            if record.outcome is Outcome.COMPENSATION:
                compensations.append(record)
                continue
            opening_step = opening_step or record.step
            step = progress.get(record.step)
            if step is None:
                step = progress[record.step] = StepProgress(record.step)
            moment = record.timestamp_ms
            if record.outcome is Outcome.STARTED and step.started_ms is None:
                step.started_ms = moment
            elif record.outcome is Outcome.SUCCEEDED:
                step.succeeded_ms = moment if step.succeeded_ms is None else step.succeeded_ms
                step.last_succeeded_ms = moment
            elif record.outcome is Outcome.FAILED:
                step.failed_ms = moment if step.failed_ms is None else step.failed_ms
                step.last_failed_ms = moment

        problems = _order_problems(progress, definition) if definition else []
        rollback_ms = min(
            [
                step.last_failed_ms
                for step in progress.values()
                if step.failure_stands and step.last_failed_ms is not None
            ]
            + [record.timestamp_ms for record in compensations],
            default=None,
        )
        if rollback_ms is None:
            status = self._forward_status(
                progress, definition, final_seen, last_outcome, opening_step
            )
            if now_ms is not None and status is SagaStatus.RUNNING:
                status = self._forward_timeouts(
                    progress, definition, opening_step, now_ms, default_stuck_after_s, problems
                )
        else:
            needing = [
                name
                for name, step in progress.items()
                if _needs_compensation(step, step_defs.get(name), definition, rollback_ms)
            ]
            _attribute_compensations(progress, compensations, needing)
            if definition:
                problems += _compensation_order_problems(progress, needing)
            missing = [name for name in needing if progress[name].compensated_ms is None]
            problems += _after_compensation_problems(self.steps, compensations)
            if not compensations:
                status = SagaStatus.FAILED
            elif missing:
                status = SagaStatus.COMPENSATING
            else:
                status = SagaStatus.COMPENSATED
            gave_up = now_ms is not None and self._quiet_too_long(
                definition, now_ms, default_stuck_after_s
            )
            if gave_up and missing and (compensations or definition):
                status = SagaStatus.COMPENSATION_INCOMPLETE
                problems += [f"compensation missing for step {name}" for name in missing]
        ordered = [progress[name] for name in step_defs] + [
            step for name, step in progress.items() if name not in step_defs
        ]
        return _Assessment(status, problems[:MAX_PROBLEMS], ordered)

    @staticmethod
    def _forward_status(
        progress: Mapping[str, StepProgress],
        definition: SagaDefinition | None,
        final_seen: bool,
        last_outcome: Outcome | None,
        opening_step: str | None,
    ) -> SagaStatus:
        if definition is not None:
            all_done = bool(definition.steps) and all(
                progress[step.name].succeeded_ms is not None for step in definition.steps
            )
            return SagaStatus.COMPLETED if final_seen or all_done else SagaStatus.RUNNING
        pending = _pending_without_definition(progress, opening_step)
        if not pending and last_outcome is Outcome.SUCCEEDED:
            return SagaStatus.COMPLETED
        return SagaStatus.RUNNING

    def _forward_timeouts(
        self,
        progress: Mapping[str, StepProgress],
        definition: SagaDefinition | None,
        opening_step: str | None,
        now_ms: int,
        default_stuck_after_s: float,
        problems: list[str],
    ) -> SagaStatus:
        reasons: list[str] = []
        if definition is None:
            if not self._quiet_too_long(None, now_ms, default_stuck_after_s):
                return SagaStatus.RUNNING
            pending = _pending_without_definition(progress, opening_step)
            if not pending:
                return SagaStatus.COMPLETED
            waiting = ", ".join(step.name for step in pending)
            reasons.append(
                f"no event for over {_seconds(default_stuck_after_s)}; waiting on {waiting}"
            )
        else:
            for step in definition.steps:
                state = progress[step.name]
                if (
                    step.timeout_s is not None
                    and state.started_ms is not None
                    and state.succeeded_ms is None
                    and now_ms - state.started_ms > step.timeout_s * 1000
                ):
                    reasons.append(
                        f"step {step.name} timed out: no result {_seconds(step.timeout_s)} "
                        "after it started"
                    )
            if self._quiet_too_long(definition, now_ms, default_stuck_after_s):
                if definition.timeout_s is not None:
                    reasons.append(
                        f"saga timed out: unfinished {_seconds(definition.timeout_s)} "
                        "after its first event"
                    )
                else:
                    reasons.append(f"no event for over {_seconds(default_stuck_after_s)}")
        if not reasons:
            return SagaStatus.RUNNING
        problems.extend(reasons)
        return SagaStatus.STUCK

    def _quiet_too_long(
        self, definition: SagaDefinition | None, now_ms: int, default_stuck_after_s: float
    ) -> bool:
        """Past the saga's timeout since its first event, else past the default since its last."""
        if definition is not None and definition.timeout_s is not None:
            return now_ms - self.first_ms > definition.timeout_s * 1000
        limit = default_stuck_after_s if math.isfinite(default_stuck_after_s) else math.inf
        return now_ms - self.last_ms > max(limit, 0) * 1000


def _needs_compensation(
    step: StepProgress,
    step_definition: StepDefinition | None,
    definition: SagaDefinition | None,
    rollback_ms: int,
) -> bool:
    """Succeeded and not failed, and: defined with compensations (or by name only) when the
    saga has a definition, else succeeded before the rollback began."""
    if step.succeeded_ms is None or step.failure_stands:
        return False
    if definition is not None:
        return step_definition is not None and (
            bool(step_definition.compensations) or step_definition.name_only
        )
    return step.succeeded_ms <= rollback_ms


def _pending_without_definition(
    progress: Mapping[str, StepProgress], opening_step: str | None
) -> list[StepProgress]:
    """Started without success; the opening step only while nothing else happened."""
    return [
        step
        for step in progress.values()
        if step.started_ms is not None
        and step.succeeded_ms is None
        and not (step.name == opening_step and len(progress) > 1)
    ]


def _attribute_compensations(
    progress: dict[str, StepProgress], compensations: Sequence[StepRecord], needing: Sequence[str]
) -> None:
    """Mark which step each compensation undid (see the module docstring)."""
    for record in compensations:
        target: str | None = record.step if record.step in progress else None
        if target is None:
            waiting = [
                name
                for name in needing
                if progress[name].compensated_ms is None
                and (progress[name].succeeded_ms or 0) <= record.timestamp_ms
            ]
            if waiting:
                target = max(waiting, key=lambda name: progress[name].succeeded_ms or 0)
        if target is None:
            target = record.step
            progress[target] = StepProgress(target)
        step = progress[target]
        if step.compensated_ms is None:
            step.compensated_ms = record.timestamp_ms


def _after_compensation_problems(
    records: Sequence[StepRecord], compensations: Sequence[StepRecord]
) -> list[str]:
    """Steps of the saga that ran again after it was rolled back: an order cancelled, then
    charged and confirmed (a redrive or replay of an old command does this). A step first
    seen after the rollback (telling the customer of the cancellation) is not one of them.
    Named by event type."""
    if not compensations:
        return []
    rolled_back_ms = max(record.timestamp_ms for record in compensations)
    forward = (Outcome.STARTED, Outcome.SUCCEEDED, Outcome.FAILED)
    before = {r.step for r in records if r.outcome in forward and r.timestamp_ms <= rolled_back_ms}
    late = [
        record for record in records
        if record.outcome in (Outcome.STARTED, Outcome.SUCCEEDED)
        and record.timestamp_ms > rolled_back_ms and record.step in before
    ]  # fmt: skip
    return [f"{record.event_type} (step {record.step}) after compensation" for record in late]


def _order_problems(progress: Mapping[str, StepProgress], definition: SagaDefinition) -> list[str]:
    problems: list[str] = []
    names = [step.name for step in definition.steps]
    for later_index, later in enumerate(names):
        later_ms = progress[later].first_ms
        if later_ms is None:
            continue
        for earlier in names[:later_index]:
            earlier_ms = progress[earlier].first_ms
            if earlier_ms is not None and later_ms < earlier_ms:
                problems.append(f"step {later} before {earlier}")
    return problems


def _compensation_order_problems(
    progress: Mapping[str, StepProgress], needing: Sequence[str]
) -> list[str]:
    """Compensations should run in reverse step order."""
    problems: list[str] = []
    for index, earlier in enumerate(needing):
        earlier_ms = progress[earlier].compensated_ms
        if earlier_ms is None:
            continue
        for later in needing[index + 1 :]:
            later_ms = progress[later].compensated_ms
            if later_ms is not None and earlier_ms < later_ms:
                problems.append(f"compensation for {earlier} before {later}")
    return problems


def new_state(saga_id: str) -> SagaState:
    return SagaState(saga_id=clean_text(saga_id, MAX_KEY_CHARS))
