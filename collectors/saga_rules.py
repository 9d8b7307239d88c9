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

This module holds the vocabulary (words, patterns, rules, definitions) and the
classification; collectors/saga_config.py reads the configuration into it and
collectors/saga_state.py applies it to one saga's events. It is long because the rules and
their explanation above belong together.

``SagaState.apply`` keeps every status except the time-dependent ones up to date per event;
``SagaState.evaluate`` adds the clock. Both derive the result from the saga's own stored events,
sorted by timestamp, so the final state never depends on arrival order. A saga keeps its first
``MAX_RECORDS`` events; later ones only move ``last_ms``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

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


CONFIG_OUTCOMES = {
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


def clean_text(value: object, limit: int) -> str:
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


def ordered_rules(rules: Iterable[StepRule]) -> tuple[StepRule, ...]:
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
    return ordered_rules(rules)


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

    # ------------------------------------------------------------------ classification

    def classify(
        self, event_type: str, topic: str, definition: SagaDefinition | None = None
    ) -> StepClassification:
        """Step name, outcome and the rule that decided, for one event; never raises.

        With ``definition``, event types it lists win over the naming rules, and a step name
        from the rules that matches a defined step's name becomes that step.
        """
        event_type = clean_text(event_type, MAX_TYPE_CHARS)
        topic = clean_text(topic, MAX_TOPIC_CHARS)
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
        event_type = clean_text(event_type, MAX_TYPE_CHARS)
        topic = clean_text(topic, MAX_TOPIC_CHARS)
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
        words = _split_words(clean_text(name, MAX_NAME_CHARS))
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
