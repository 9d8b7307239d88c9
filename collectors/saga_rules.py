"""Saga reconstruction: which step each event is, and what state each saga instance is in.

Services implement sagas (distributed transactions) themselves, over Kafka. eventscope groups
their events by saga id (falling back to the correlation id) and rebuilds each instance's
history from those events alone, one event at a time, in whatever order they arrive.

Steps and outcomes
------------------
Every event is a *step* with an *outcome*: ``started``, ``succeeded``, ``failed``,
``compensation`` or ``info`` (nothing recognizable). The event type is split into words --
CamelCase, snake_case, kebab-case and dotted names alike, ignoring trailing ``Event``,
``Message``, ``Command``, ``Reply`` and version words such as ``v1`` -- and matched against
rules. A rule is a word pattern: ``Reserved`` (the type ends with it), ``Cancel*`` (starts with
it), ``*Refund*`` (contains it as a whole word); a topic rule is a glob such as ``*-commands``.
Patterns compare whole words, ignoring case and separators, so ``TimedOut`` also matches
``payment.timed_out``, while ``Reserved`` never matches ``Unreserved``.

The first matching rule wins, in this order:

1. compensation words (``...Cancelled``, ``...Refunded``, ``...Released``, ``Cancel...``,
   ``Undo...``, any ``Refund`` word): ``RefundInitiated`` is a compensation, not a start;
2. failure suffixes (``...Failed``, ``...Declined``, ``...Rejected``, ``...TimedOut`` ...);
3. success suffixes (``...Succeeded``, ``...Completed``, ``...Reserved``, ``...Sent`` ...);
4. start suffixes (``...Requested``, ``...Created``, ``...Initiated``, ``...Placed`` ...);
5. topic patterns: orchestrator reply topics (``*-replies``, ``*.replies``) mean succeeded,
   command topics (``*-commands``, ``*.commands``) mean started;
6. imperative command names (``ReserveFlight``, ``BookHotel``) mean started.

Rules from the configuration are tried before the built-in ones (in the same order among
themselves), so a configured word always beats a default; ``use_defaults = false`` drops the
built-ins altogether.

The step name is what remains of the event type once the outcome word, command verbs
(``Reserve``, ``Book``) and trailing action nouns (``Reservation``, ``Booking``, ``Credit``)
are removed, lowercased, in the singular, words joined by ``-``. ``FlightReserved``,
``ReserveFlight``, ``FlightReservationRequested`` and ``FlightCancelled`` are all step
``flight``, so a compensation lines up with the step it undoes. Of a dotted name only the last
part that still has words counts (``com.example.payment.failed.v1`` is step ``payment``). When
nothing remains (``RefundInitiated``) the topic names the step (``payments`` -> ``payment``).

Saga definitions
----------------
A definition (optional, from configuration) names a saga type, says how to recognize it (event
types or topics that belong to it, or its first event type), lists its steps in order -- each
with the event types meaning started, succeeded, failed and compensated, and a timeout -- and
the final event types that mean the whole saga completed. Event types listed in a definition
take precedence over the naming rules; other events are still classified by the rules, and land
on a defined step when their step name matches the step's name. A saga's type is the definition
recognized by its earliest event.

Statuses
--------
The *rollback* begins at the first failure that was not followed by a success of the same step
(a retried step that then succeeded is not a failure) or at the first compensation, whichever
comes first. The steps that *need compensation* are, with a definition, the defined steps that
succeeded and either list compensation event types or list no event types at all; without one,
the steps that succeeded before the rollback began. A compensation counts for the step its name
names; one naming no known step (``RefundInitiated`` on an unnamed topic) counts for the most
recently succeeded step still waiting for its compensation, because sagas undo in reverse order.

- ``running``: no rollback, and not finished.
- ``completed``: no rollback, and a final event arrived or all defined steps succeeded. Without
  a definition eventscope cannot know whether more steps are coming: a saga is completed when
  its latest step event is a success and no step is pending (started without a success; the
  step that opened the saga, such as ``OrderCreated``, does not count as pending once other steps
  followed), or when nothing is pending and it has been quiet past the stuck limit. A later event
  reopens it.
- ``failed``: a failure, no compensation yet.
- ``compensating``: compensations arrived, but some steps that need one have none yet.
- ``compensated``: every step that needs compensation has one.
- ``compensation_incomplete``: compensating (or failed, with a definition that expects
  compensations) and quiet past the limit while some step still lacks its compensation; each such
  step is named in ``problems``. Without a definition a failure followed by no compensation at all
  stays ``failed``: nothing says this system compensates.
- ``stuck``: running past the limit: a defined step pending longer than its own timeout, the
  saga unfinished longer than the definition's timeout after its first event, or, without a
  saga timeout, no event for longer than the default (one hour).

With a definition eventscope also records problems that do not depend on time: steps that
happened in a different order than defined (``step payment before hotel``) and compensations
that did not run in reverse order (``compensation for flight before hotel``).

``SagaState.apply`` keeps every status except the time-dependent ones up to date per event;
``SagaState.evaluate`` adds the clock. Both derive the result from the saga's own stored events,
sorted by timestamp, so the final state never depends on arrival order. A saga keeps its first
``MAX_RECORDS`` events; later ones only move ``last_ms``.
"""

from __future__ import annotations

import bisect
import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import orjson

MAX_TYPE_CHARS = 512
MAX_TOPIC_CHARS = 300
MAX_KEY_CHARS = 512
MAX_SERVICE_CHARS = 256
MAX_NAME_CHARS = 200
MAX_STEP_CHARS = 200
MAX_RULE_TEXT_CHARS = 300
MAX_WORDS = 64
MAX_SPAN_WORDS = 6
MAX_RECORDS = 1000
MAX_PROBLEMS = 50
MAX_LIST_ITEMS = 1000
MAX_TIMESTAMP_MS = 2**53 - 1
DEFAULT_STUCK_AFTER_S = 3600.0
_CACHE_LIMIT = 8192
_STATE_FORMAT = 1

_SEGMENT_SEPARATORS = frozenset(".:/")


def _listed(text: str) -> tuple[str, ...]:
    """A whitespace-separated word list, so long vocabularies stay readable."""
    return tuple(text.split())


_NOISE_WORDS = frozenset(
    _listed("event events evt message messages msg command commands cmd reply replies")
    + _listed("response responses")
)
_TOPIC_NOISE_WORDS = _NOISE_WORDS | frozenset(
    _listed("topic topics queue stream service svc dlq dlt retry request requests")
)
_DOMAIN_ROOTS = frozenset({"com", "org", "net", "io", "dev", "app", "co", "de", "uk", "eu", "fr"})
_STEM_ENDINGS = ("ations", "ation", "ions", "ion", "ings", "ing", "als", "al", "ed", "es", "e", "s")
_IRREGULAR_STEMS = {"sent": "send", "paid": "pay", "undone": "undo", "begun": "begin"}


class Outcome(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    COMPENSATION = "compensation"
    INFO = "info"


class SagaStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_INCOMPLETE = "compensation_incomplete"
    STUCK = "stuck"


class RulePosition(StrEnum):
    """Where a rule's words must appear: end, start or anywhere in the type, or the topic."""

    SUFFIX = "suffix"
    PREFIX = "prefix"
    WORD = "word"
    TOPIC = "topic"


_CONFIG_OUTCOMES = {
    "started": Outcome.STARTED,
    "succeeded": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
    "compensation": Outcome.COMPENSATION,
}

DEFAULT_EVENT_TYPE_PATTERNS: Mapping[Outcome, tuple[str, ...]] = {
    Outcome.STARTED: _listed(
        """
        Requested Created Initiated Started Placed Submitted Pending Opened Begun
        Reserve* Book* Create* Start* Request* Place* Process* Charge* Send* Ship* Approve*
        Confirm* Initiate* Begin* Submit* Authorize* Authorise* Capture* Allocate* Execute*
        Verify* Validate*
        """
    ),
    Outcome.SUCCEEDED: _listed(
        """
        Succeeded Success Successful Completed Complete Done Finished Reserved Approved Confirmed
        Accepted Credited Debited Charged Paid Captured Authorized Authorised Allocated Booked
        Sent Shipped Delivered Fulfilled Processed Verified Validated
        """
    ),
    Outcome.FAILED: _listed(
        """
        Failed Failure Declined Rejected Denied Error Errored TimedOut Timeout Expired Aborted
        """
    ),
    Outcome.COMPENSATION: _listed(
        """
        Cancelled Canceled Refunded Compensated Released Reversed Voided RolledBack Reverted
        Undone Cancel* Undo* Compensate* Release* Reverse* Void* Revert*
        *Refund* *Cancellation* *Compensation* *Rollback* *Reversal*
        """
    ),
}

DEFAULT_TOPIC_PATTERNS: Mapping[Outcome, tuple[str, ...]] = {
    Outcome.STARTED: _listed(
        "*-commands *.commands *_commands *-command *.command *_command *-requests *.requests"
    ),
    Outcome.SUCCEEDED: _listed(
        "*-replies *.replies *_replies *-reply *.reply *_reply *-responses *.responses"
    ),
}

# --------------------------------------------------------------------------- text helpers


def _clean_text(value: object, limit: int) -> str:
    """Any value as a bounded, storable string (no NUL, no lone surrogates); never raises."""
    if isinstance(value, str):
        text = value[:limit]
    elif isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value[: limit * 4]).decode("utf-8", "replace")[:limit]
    elif value is None:
        return ""
    else:
        try:
            text = str(value)[:limit]
        except Exception:
            return ""
    if not text.isascii() or "\x00" in text:
        text = text.encode("utf-8", "replace").decode("utf-8", "replace").replace("\x00", "")
    return text


def _clean_ms(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, min(MAX_TIMESTAMP_MS, value))
    if isinstance(value, float) and math.isfinite(value):
        return max(0, min(MAX_TIMESTAMP_MS, int(value)))
    return 0


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    segment: int


def _split_words(text: str) -> list[_Word]:
    """Lowercase words of a name; dots, colons and slashes also start a new segment."""
    words: list[_Word] = []
    segment = 0
    current: list[str] = []
    chars = text[:MAX_TYPE_CHARS]
    for index, char in enumerate(chars):
        if len(words) >= MAX_WORDS:
            return words
        if not char.isalnum():
            if current:
                words.append(_Word("".join(current).casefold(), segment))
                current = []
            if char in _SEGMENT_SEPARATORS:
                segment += 1
            continue
        if current and char.isupper():
            previous = current[-1]
            following = chars[index + 1] if index + 1 < len(chars) else ""
            if (
                previous.islower()
                or previous.isdigit()
                or (previous.isupper() and following.islower())
            ):
                words.append(_Word("".join(current).casefold(), segment))
                current = []
        current.append(char)
    if current and len(words) < MAX_WORDS:
        words.append(_Word("".join(current).casefold(), segment))
    return words


def _is_version(word: str) -> bool:
    return word.isdigit() or (len(word) > 1 and word[0] == "v" and word[1:].isdigit())


def _without_trailing_noise(words: list[_Word]) -> list[_Word]:
    end = len(words)
    while end and (words[end - 1].text in _NOISE_WORDS or _is_version(words[end - 1].text)):
        end -= 1
    return words[:end]


def _stem(word: str) -> str:
    """Crude stem so that ``reserved``, ``reserve`` and ``reservation`` compare equal."""
    if word in _IRREGULAR_STEMS:
        return _IRREGULAR_STEMS[word]
    for ending in _STEM_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            if ending == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(ending)]
            break
    if len(word) >= 6 and word.endswith("at"):
        word = word[:-2]
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    return word


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _pattern_key(text: str) -> str:
    return "".join(word.text for word in _split_words(text))


def _seconds(value: float) -> str:
    return f"{value:g}s"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class _NameView:
    """Every way a rule can match one event type: joined word spans and where they lie."""

    suffixes: dict[str, tuple[int, int]]
    prefixes: dict[str, tuple[int, int]]
    anywhere: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, words: Sequence[_Word]) -> _NameView:
        texts = [word.text for word in words]
        count = len(texts)
        suffixes: dict[str, tuple[int, int]] = {}
        for length in range(1, min(count, MAX_SPAN_WORDS) + 1):
            suffixes.setdefault("".join(texts[count - length :]), (count - length, count))
        starts = {0}
        if words:
            last_segment = words[-1].segment
            starts.add(next(i for i, word in enumerate(words) if word.segment == last_segment))
        prefixes: dict[str, tuple[int, int]] = {}
        for start in sorted(starts):
            for length in range(1, min(count - start, MAX_SPAN_WORDS) + 1):
                prefixes.setdefault("".join(texts[start : start + length]), (start, start + length))
        anywhere: dict[str, tuple[int, int]] = {}
        for start in range(count):
            for length in range(1, min(count - start, MAX_SPAN_WORDS) + 1):
                anywhere.setdefault("".join(texts[start : start + length]), (start, start + length))
        return cls(suffixes, prefixes, anywhere)


@dataclass(frozen=True, slots=True)
class StepRule:
    """One classification rule: a word pattern for event types or a glob for topics.

    ``pattern`` is the text as configured; ``key`` is what is compared (the pattern's words
    joined and lowercased, or the casefolded topic glob).
    """

    outcome: Outcome
    position: RulePosition
    pattern: str
    key: str

    @classmethod
    def for_event_type(cls, outcome: Outcome, pattern: str) -> StepRule:
        """``Word`` matches at the end, ``Word*`` at the start, ``*Word*`` anywhere."""
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError("expected a non-empty string")
        if len(pattern) > MAX_NAME_CHARS:
            raise ValueError(f"longer than {MAX_NAME_CHARS} characters")
        core = pattern.strip().replace("\u2026", "*")
        leading, trailing = core.startswith("*"), core.endswith("*")
        core = core.strip("*")
        if "*" in core:
            raise ValueError("'*' is only allowed at the start or the end")
        key = _pattern_key(core)
        if not key:
            raise ValueError("the pattern has no letters or digits")
        if leading and trailing:
            position = RulePosition.WORD
        elif trailing:
            position = RulePosition.PREFIX
        else:
            position = RulePosition.SUFFIX
        return cls(outcome, position, pattern.strip(), key)

    @classmethod
    def for_topic(cls, outcome: Outcome, pattern: str) -> StepRule:
        """A glob (``*``, ``?``, ``[...]``) matched against the whole topic name, any case."""
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError("expected a non-empty string")
        if len(pattern) > MAX_NAME_CHARS:
            raise ValueError(f"longer than {MAX_NAME_CHARS} characters")
        return cls(outcome, RulePosition.TOPIC, pattern.strip(), pattern.strip().casefold())

    def describe(self) -> str:
        kind = {
            RulePosition.SUFFIX: "event type ends with",
            RulePosition.PREFIX: "event type starts with",
            RulePosition.WORD: "event type contains",
            RulePosition.TOPIC: "topic matches",
        }[self.position]
        shown = self.pattern
        if self.position is not RulePosition.TOPIC:
            shown = shown.replace("\u2026", "*").strip("*")
        return f'{kind} "{shown}" -> {self.outcome}'

    def _match(self, view: _NameView, topic: str) -> tuple[int, int] | None:
        """The matched word span (empty for topic rules), or None."""
        if self.position is RulePosition.TOPIC:
            return (0, 0) if fnmatch.fnmatchcase(topic, self.key) else None
        table = {
            RulePosition.SUFFIX: view.suffixes,
            RulePosition.PREFIX: view.prefixes,
            RulePosition.WORD: view.anywhere,
        }[self.position]
        return table.get(self.key)


_OUTCOME_RANK = {
    Outcome.COMPENSATION: 0,
    Outcome.FAILED: 1,
    Outcome.SUCCEEDED: 2,
    Outcome.STARTED: 3,
    Outcome.INFO: 4,
}


def _precedence(rule: StepRule) -> tuple[int, int]:
    """Tier of a rule in the documented order; stable sort keeps order inside a tier."""
    rank = _OUTCOME_RANK[rule.outcome]
    if rule.position is RulePosition.TOPIC:
        return (4, rank)
    if rule.outcome in (Outcome.COMPENSATION, Outcome.FAILED):
        return (rank, 0)
    if rule.position is RulePosition.PREFIX:
        return (5, rank)
    return (rank, 0)


def _ordered(rules: Iterable[StepRule]) -> tuple[StepRule, ...]:
    return tuple(sorted(rules, key=_precedence))


def default_rules() -> tuple[StepRule, ...]:
    """The built-in rules in precedence order."""
    rules = [
        StepRule.for_event_type(outcome, pattern)
        for outcome, patterns in DEFAULT_EVENT_TYPE_PATTERNS.items()
        for pattern in patterns
    ]
    rules += [
        StepRule.for_topic(outcome, pattern)
        for outcome, patterns in DEFAULT_TOPIC_PATTERNS.items()
        for pattern in patterns
    ]
    return _ordered(rules)


@dataclass(frozen=True, slots=True)
class StepClassification:
    step: str
    outcome: Outcome
    rule: str


@dataclass(frozen=True, slots=True)
class StepDefinition:
    name: str
    started: tuple[str, ...] = ()
    succeeded: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    compensations: tuple[str, ...] = ()
    timeout_s: float | None = None

    @property
    def name_only(self) -> bool:
        """No event types listed: the naming rules decide which events belong to the step."""
        return not (self.started or self.succeeded or self.failed or self.compensations)


@dataclass(frozen=True, slots=True)
class SagaDefinition:
    name: str
    steps: tuple[StepDefinition, ...] = ()
    timeout_s: float | None = None
    final_event_types: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    first_event_type: str | None = None

    def member_event_types(self) -> frozenset[str]:
        """Every event type (casefolded) that identifies this saga type."""
        types: set[str] = set(self.event_types) | set(self.final_event_types)
        if self.first_event_type:
            types.add(self.first_event_type)
        for step in self.steps:
            types.update(step.started, step.succeeded, step.failed, step.compensations)
        return frozenset(name.casefold() for name in types)


@dataclass(frozen=True, slots=True)
class _DefinitionIndex:
    members: frozenset[str]
    topics: tuple[str, ...]
    events: Mapping[str, tuple[str, Outcome]]
    finals: frozenset[str]
    step_by_key: Mapping[str, str]


@dataclass
class SagaRules:
    """Classification rules + optional definitions; built from configuration.

    Rules are tried in order, first match wins (``from_mapping`` orders them by the documented
    precedence). Treat an instance as immutable: it caches classifications.
    """

    rules: tuple[StepRule, ...] = field(default_factory=default_rules)
    definitions: tuple[SagaDefinition, ...] = ()
    _exact_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _prefix_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _action_stems: frozenset[str] = field(init=False, repr=False, compare=False)
    _indexes: dict[str, _DefinitionIndex] = field(init=False, repr=False, compare=False)
    _classified: dict[tuple[str, str, str | None], StepClassification] = field(
        init=False, repr=False, compare=False
    )
    _recognized: dict[tuple[str, str], str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        type_rules = [rule for rule in self.rules if rule.position is not RulePosition.TOPIC]
        self._exact_keys = frozenset(rule.key for rule in type_rules)
        self._prefix_keys = frozenset(
            rule.key for rule in type_rules if rule.position is RulePosition.PREFIX
        )
        self._action_stems = frozenset(_stem(rule.key) for rule in type_rules)
        self._indexes = {}
        for definition in self.definitions:
            self._indexes.setdefault(definition.name, self._index(definition))
        self._classified = {}
        self._recognized = {}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SagaRules:
        """Build from the TOML-shaped ``[saga]`` table; a bad value raises ValueError naming it.

        Keys: ``use_defaults`` (bool), ``outcomes`` and ``topics`` (tables with lists under
        ``started``, ``succeeded``, ``failed``, ``compensation``) and ``definitions`` (list of
        tables: ``name``, ``event_types``, ``topics``, ``first_event_type``, ``timeout_s``,
        ``final_event_types``, ``steps`` = list of tables with ``name``, ``started``,
        ``succeeded``, ``failed``, ``compensations``, ``timeout_s``).
        """
        if not isinstance(data, Mapping):
            raise ValueError("saga: expected a table")
        _reject_unknown_keys(data, {"use_defaults", "outcomes", "topics", "definitions"}, "")
        use_defaults = data.get("use_defaults", True)
        if not isinstance(use_defaults, bool):
            raise ValueError("use_defaults: expected true or false")
        configured = _parse_rules(data, "outcomes", StepRule.for_event_type)
        configured += _parse_rules(data, "topics", StepRule.for_topic)
        rules = _ordered(configured) + (default_rules() if use_defaults else ())
        raw_definitions = data.get("definitions", [])
        if not isinstance(raw_definitions, list) or len(raw_definitions) > MAX_LIST_ITEMS:
            raise ValueError(f"definitions: expected a list of at most {MAX_LIST_ITEMS} tables")
        definitions = tuple(
            _parse_definition(item, f"definitions[{index}]")
            for index, item in enumerate(raw_definitions)
        )
        seen: set[str] = set()
        for index, definition in enumerate(definitions):
            if definition.name.casefold() in seen:
                raise ValueError(f"definitions[{index}].name: duplicate name {definition.name!r}")
            seen.add(definition.name.casefold())
        return cls(rules=rules, definitions=definitions)

    # ------------------------------------------------------------------ classification

    def classify(
        self, event_type: str, topic: str, definition: SagaDefinition | None = None
    ) -> StepClassification:
        """Step name, outcome and the rule that decided, for one event; never raises.

        With ``definition``, event types it lists win over the naming rules, and a step name
        from the rules that matches a defined step's name becomes that step.
        """
        event_type = _clean_text(event_type, MAX_TYPE_CHARS)
        topic = _clean_text(topic, MAX_TOPIC_CHARS)
        cache_key = (event_type, topic, definition.name if definition else None)
        cached = self._classified.get(cache_key)
        if cached is not None:
            return cached
        result = self._classify(event_type, topic, definition)
        if len(self._classified) >= _CACHE_LIMIT:
            self._classified.clear()
        self._classified[cache_key] = result
        return result

    def definition_for(self, event_type: str, topic: str) -> SagaDefinition | None:
        """The first definition that lists this event type or whose topics match; else None."""
        event_type = _clean_text(event_type, MAX_TYPE_CHARS)
        topic = _clean_text(topic, MAX_TOPIC_CHARS)
        cache_key = (event_type, topic)
        if cache_key in self._recognized:
            return self.definition_named(self._recognized[cache_key])
        found: SagaDefinition | None = None
        folded_type, folded_topic = event_type.casefold(), topic.casefold()
        for definition in self.definitions:
            index = self._index_of(definition)
            if folded_type in index.members or any(
                fnmatch.fnmatchcase(folded_topic, pattern) for pattern in index.topics
            ):
                found = definition
                break
        if len(self._recognized) >= _CACHE_LIMIT:
            self._recognized.clear()
        self._recognized[cache_key] = found.name if found else None
        return found

    def definition_named(self, name: str | None) -> SagaDefinition | None:
        if not name:
            return None
        return next((item for item in self.definitions if item.name == name), None)

    def step_key(self, name: str) -> str:
        """The comparable form of a step name, as the naming rules would produce it."""
        words = _split_words(_clean_text(name, MAX_NAME_CHARS))
        return self._step_name(words) or "-".join(_singular(word.text) for word in words)

    def _classify(
        self, event_type: str, topic: str, definition: SagaDefinition | None
    ) -> StepClassification:
        index = self._index_of(definition) if definition is not None else None
        if index is not None and definition is not None:
            listed = index.events.get(event_type.casefold())
            if listed is not None:
                step, outcome = listed
                return StepClassification(
                    step, outcome, f"saga {definition.name}: {outcome} of step {step}"
                )
        result = self._classify_by_rules(event_type, topic)
        if index is None or definition is None:
            return result
        step = index.step_by_key.get(result.step, result.step)
        if event_type.casefold() in index.finals:
            return StepClassification(step, Outcome.SUCCEEDED, f"saga {definition.name}: final")
        return StepClassification(step, result.outcome, result.rule)

    def _classify_by_rules(self, event_type: str, topic: str) -> StepClassification:
        words = _without_trailing_noise(_split_words(event_type))
        view = _NameView.of(words)
        folded_topic = topic.casefold()
        for rule in self.rules:
            span = rule._match(view, folded_topic)
            if span is None:
                continue
            start, end = span
            matched = "".join(word.text for word in words[start:end])
            step = (
                self._step_name(words[:start] + words[end:])
                or self._topic_step(topic)
                or matched
                or "unknown"
            )
            return StepClassification(step, rule.outcome, rule.describe())
        step = self._step_name(words) or self._topic_step(topic) or "unknown"
        return StepClassification(step, Outcome.INFO, "no rule matched")

    def _step_name(self, words: Sequence[_Word]) -> str:
        kept = list(words)
        if (
            len(kept) > 2
            and kept[0].segment == 0
            and kept[0].text in _DOMAIN_ROOTS
            and kept[-1].segment > 1
        ):
            kept = [word for word in kept if word.segment > 1]
        while kept and kept[0].text in self._prefix_keys:
            kept.pop(0)
        while kept and kept[-1].text in self._exact_keys:
            kept.pop()
        while len(kept) > 1 and _stem(kept[-1].text) in self._action_stems:
            kept.pop()
        if not kept:
            return ""
        segment = kept[-1].segment
        name = "-".join(_singular(word.text) for word in kept if word.segment == segment)
        return name[:MAX_STEP_CHARS]

    def _topic_step(self, topic: str) -> str:
        words = [
            word
            for word in _split_words(topic)
            if word.text not in _TOPIC_NOISE_WORDS and not _is_version(word.text)
        ]
        return self._step_name(words)

    def _index_of(self, definition: SagaDefinition) -> _DefinitionIndex:
        index = self._indexes.get(definition.name)
        if index is None:
            index = self._index(definition)
            self._indexes[definition.name] = index
        return index

    def _index(self, definition: SagaDefinition) -> _DefinitionIndex:
        events: dict[str, tuple[str, Outcome]] = {}
        step_by_key: dict[str, str] = {}
        for step in definition.steps:
            step_by_key.setdefault(self.step_key(step.name), step.name)
            for outcome, types in (
                (Outcome.STARTED, step.started),
                (Outcome.SUCCEEDED, step.succeeded),
                (Outcome.FAILED, step.failed),
                (Outcome.COMPENSATION, step.compensations),
            ):
                for event_type in types:
                    events.setdefault(event_type.casefold(), (step.name, outcome))
        return _DefinitionIndex(
            members=definition.member_event_types(),
            topics=tuple(pattern.casefold() for pattern in definition.topics),
            events=events,
            finals=frozenset(name.casefold() for name in definition.final_event_types),
            step_by_key=step_by_key,
        )


# --------------------------------------------------------------------------- configuration


def _reject_unknown_keys(data: Mapping[Any, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            name = _clean_text(key, 80)
            raise ValueError(
                f"{where}{name}: unknown key (expected one of {', '.join(sorted(allowed))})"
            )


def _string_list(value: object, where: str, limit: int = MAX_TYPE_CHARS) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_LIST_ITEMS:
        raise ValueError(f"{where}: expected a list of at most {MAX_LIST_ITEMS} strings")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > limit:
            raise ValueError(f"{where}[{index}]: expected a non-empty string up to {limit} chars")
    return tuple(item.strip() for item in value)


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        raise ValueError(f"{where}: expected a non-empty string up to {MAX_NAME_CHARS} chars")
    return value.strip()


def _timeout(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{where}: expected a positive number of seconds")
    return seconds


def _parse_rules(
    data: Mapping[str, Any], section: str, make: Callable[[Outcome, str], StepRule]
) -> list[StepRule]:
    table = data.get(section, {})
    if not isinstance(table, Mapping):
        raise ValueError(f"{section}: expected a table of outcome = [patterns]")
    _reject_unknown_keys(table, set(_CONFIG_OUTCOMES), f"{section}.")
    rules: list[StepRule] = []
    for name, patterns in table.items():
        where = f"{section}.{name}"
        for index, pattern in enumerate(_string_list(patterns, where, MAX_NAME_CHARS)):
            try:
                rules.append(make(_CONFIG_OUTCOMES[name], pattern))
            except ValueError as error:
                raise ValueError(f"{where}[{index}]: {error}") from None
    return rules


def _parse_step(item: object, where: str) -> StepDefinition:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a table")
    allowed = {"name", "started", "succeeded", "failed", "compensations", "timeout_s"}
    _reject_unknown_keys(item, allowed, f"{where}.")
    return StepDefinition(
        name=_name(item.get("name"), f"{where}.name"),
        started=_string_list(item.get("started", []), f"{where}.started"),
        succeeded=_string_list(item.get("succeeded", []), f"{where}.succeeded"),
        failed=_string_list(item.get("failed", []), f"{where}.failed"),
        compensations=_string_list(item.get("compensations", []), f"{where}.compensations"),
        timeout_s=_timeout(item.get("timeout_s"), f"{where}.timeout_s"),
    )


def _parse_definition(item: object, where: str) -> SagaDefinition:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a table")
    allowed = {
        "name",
        "event_types",
        "topics",
        "first_event_type",
        "timeout_s",
        "final_event_types",
        "steps",
    }
    _reject_unknown_keys(item, allowed, f"{where}.")
    raw_steps = item.get("steps", [])
    if not isinstance(raw_steps, list) or len(raw_steps) > MAX_LIST_ITEMS:
        raise ValueError(f"{where}.steps: expected a list of at most {MAX_LIST_ITEMS} tables")
    steps = tuple(
        _parse_step(step, f"{where}.steps[{index}]") for index, step in enumerate(raw_steps)
    )
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step.name.casefold() in seen:
            raise ValueError(f"{where}.steps[{index}].name: duplicate step {step.name!r}")
        seen.add(step.name.casefold())
    first = item.get("first_event_type")
    definition = SagaDefinition(
        name=_name(item.get("name"), f"{where}.name"),
        steps=steps,
        timeout_s=_timeout(item.get("timeout_s"), f"{where}.timeout_s"),
        final_event_types=_string_list(
            item.get("final_event_types", []), f"{where}.final_event_types"
        ),
        event_types=_string_list(item.get("event_types", []), f"{where}.event_types"),
        topics=_string_list(item.get("topics", []), f"{where}.topics", MAX_NAME_CHARS),
        first_event_type=None if first is None else _name(first, f"{where}.first_event_type"),
    )
    if not definition.member_event_types() and not definition.topics:
        raise ValueError(
            f"{where}: nothing recognizes this saga; give event_types, topics, "
            "first_event_type, final_event_types or event types of its steps"
        )
    return definition


# --------------------------------------------------------------------------- saga state


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
            event_key=_clean_text(texts["key"], MAX_KEY_CHARS),
            event_type=_clean_text(texts["type"], MAX_TYPE_CHARS),
            topic=_clean_text(texts["topic"], MAX_TOPIC_CHARS),
            timestamp_ms=_clean_ms(timestamp),
            service=None if service is None else _clean_text(service, MAX_SERVICE_CHARS),
            step=_clean_text(texts["step"], MAX_STEP_CHARS),
            outcome=outcome,
            rule=_clean_text(texts["rule"], MAX_RULE_TEXT_CHARS),
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
        event_type = _clean_text(getattr(event, "event_type", ""), MAX_TYPE_CHARS)
        topic = _clean_text(getattr(event, "topic", ""), MAX_TOPIC_CHARS)
        key = _clean_text(getattr(event, "event_key", ""), MAX_KEY_CHARS)
        if not key:
            key = f"{topic}@{timestamp}:{event_type}"[:MAX_KEY_CHARS]
        raw_service = getattr(event, "service", None)
        service = None if raw_service is None else _clean_text(raw_service, MAX_SERVICE_CHARS)
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
            saga_id=_clean_text(saga_id, MAX_KEY_CHARS),
            saga_type=None if saga_type is None else _clean_text(saga_type, MAX_NAME_CHARS),
            first_ms=times["first_ms"],
            last_ms=times["last_ms"],
            steps=sorted(records.values(), key=_sort_key)[:MAX_RECORDS],
            status=status,
            problems=[_clean_text(p, 500) for p in problems[:MAX_PROBLEMS]],
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
    return SagaState(saga_id=_clean_text(saga_id, MAX_KEY_CHARS))
