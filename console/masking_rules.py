"""Masking rules from their written forms: the `[masking]` section of the configuration and
the bodies the admin API and form accept. Every error names the key that is wrong.

```toml
[masking]
apply_to = "viewers"          # or "everyone": operators and admins see masked values too

[[masking.rules]]
name = "card numbers"         # optional in the file
regex = '\\b(?:\\d[ -]?){13,16}\\b'
topics = "payments.*"         # optional: a regular expression the topic name must match
replacement = "****"          # optional, default "***"

[[masking.rules]]
json_path = "$.customer.email"

[[masking.rules]]
header = "authorization"
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from console.masking import APPLY_TO, KINDS, MaskingRuleError, MaskRule, make_rule

RULE_KEYS = ("name", "header", "json_path", "regex", "kind", "pattern", "topics", "replacement",
             "enabled")  # fmt: skip


class MaskingConfigError(ValueError):
    """`key` is dotted below the section, e.g. "rules[1].regex"."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class MaskingSettings:
    apply_to: str = "viewers"
    rules: tuple[MaskRule, ...] = ()


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MaskingRuleError(key, f"must be a string, got {value!r}")
    return value


def rule_from_mapping(data: Mapping[str, Any], default_name: str | None = None) -> MaskRule:
    """A rule from `{header|json_path|regex: ...}` or `{kind: ..., pattern: ...}`.

    Raises MaskingRuleError naming the field.
    """
    for key in data:
        if key not in RULE_KEYS:
            raise MaskingRuleError(str(key), f"unknown key (known: {', '.join(RULE_KEYS)})")
    given = [kind for kind in KINDS if data.get(kind) not in (None, "")]
    kind_value = _optional_text(data, "kind")
    if kind_value is not None:
        if given:
            raise MaskingRuleError("kind", f"give either kind and pattern or {given[0]}, not both")
        pattern = _optional_text(data, "pattern")
        if pattern is None:
            raise MaskingRuleError("pattern", "missing")
        kind = kind_value
    else:
        if len(given) != 1:
            raise MaskingRuleError(
                "regex" if not given else given[1],
                "give exactly one of header, json_path or regex",
            )
        kind = given[0]
        pattern = _optional_text(data, kind) or ""
    name = _optional_text(data, "name") or default_name
    if name is None:
        raise MaskingRuleError("name", "missing")
    return make_rule(
        name, kind, pattern, _optional_text(data, "topics"), _optional_text(data, "replacement")
    )


def masking_settings(raw: Mapping[str, Any]) -> MaskingSettings:
    """The `[masking]` section; raises MaskingConfigError naming the key."""
    for key in raw:
        if key not in ("apply_to", "rules"):
            raise MaskingConfigError(str(key), "unknown key (known: apply_to, rules)")
    apply_to = raw.get("apply_to", "viewers")
    if apply_to not in APPLY_TO:
        raise MaskingConfigError("apply_to", f"'viewers' or 'everyone', not {apply_to!r}")
    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list):
        raise MaskingConfigError("rules", "must be a list of tables ([[masking.rules]])")
    rules: list[MaskRule] = []
    names: set[str] = set()
    for index, body in enumerate(rules_raw):
        where = f"rules[{index}]"
        if not isinstance(body, Mapping):
            raise MaskingConfigError(where, "must be a table")
        if "enabled" in body:
            raise MaskingConfigError(f"{where}.enabled", "rules in the file are always on")
        try:
            rule = rule_from_mapping(body, default_name=f"config rule {index + 1}")
        except MaskingRuleError as exc:
            raise MaskingConfigError(f"{where}.{exc.field}", exc.message) from None
        if rule.name in names:
            raise MaskingConfigError(f"{where}.name", f"{rule.name!r} is used twice")
        names.add(rule.name)
        rules.append(rule)
    return MaskingSettings(apply_to=apply_to, rules=tuple(rules))
