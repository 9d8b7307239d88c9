"""The `[sagas]` configuration: outcome words, topic patterns and saga definitions, read
and checked (a bad value raises ValueError naming its key), into `SagaRules`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from collectors.saga_rules import (
    CONFIG_OUTCOMES,
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
    MAX_TYPE_CHARS,
    Outcome,
    SagaDefinition,
    SagaRules,
    StepDefinition,
    StepRule,
    clean_text,
    default_rules,
    ordered_rules,
)


def saga_rules_from_mapping(data: Mapping[str, Any]) -> SagaRules:
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
    rules = ordered_rules(configured) + (default_rules() if use_defaults else ())
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
    return SagaRules(rules=rules, definitions=definitions)


def _reject_unknown_keys(data: Mapping[Any, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            name = clean_text(key, 80)
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
    _reject_unknown_keys(table, set(CONFIG_OUTCOMES), f"{section}.")
    rules: list[StepRule] = []
    for name, patterns in table.items():
        where = f"{section}.{name}"
        for index, pattern in enumerate(_string_list(patterns, where, MAX_NAME_CHARS)):
            try:
                rules.append(make(CONFIG_OUTCOMES[name], pattern))
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
