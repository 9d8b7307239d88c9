"""Data masking: hide sensitive values in records before a page, the API or an export shows
them. Pure functions over plain data; nothing here touches the index or Kafka.

Three kinds of rule (the shapes AKHQ, Kafbat UI and Redpanda Console users know):

- `header`: the value of every header with this name (case-insensitive) is replaced.
- `json_path`: the values a small JSONPath selects (`$.customer.email`, `$.items[*].price`,
  `$..email`, `$['odd key'][0]`) in a JSON value or key are replaced by a JSON string, so
  the document stays valid JSON. When the stored JSON cannot be parsed (it was truncated
  in the index, say) the member named by the path's last step is masked textually, or the
  whole payload when the path ends in an index or a wildcard.
- `regex`: every match in the value, the key, every header value and the dead-letter error
  text is replaced. In JSON it applies to string and number leaves (a number that matches
  becomes a masked string); in bytes that are not UTF-8 it matches byte by byte.

Records a schema decoded are masked in their decoded form (JSON), and their raw bytes are
withheld from whoever the rules apply to. Masking is for display only: replay and redrive
read the original bytes from Kafka or the index and never go through this module.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

REPLACEMENT = "***"
KINDS = ("header", "json_path", "regex")
APPLY_TO = ("viewers", "everyone")
MAX_PATTERN_CHARS = 1000
MAX_PATH_STEPS = 32
# Above this many bytes a payload is not scanned but hidden whole (the index caps values
# far below it; the cap only guards against a misconfiguration making masking slow).
SCAN_CAP = 16 * 1024 * 1024
# Columns the collector derived from headers: masked whole when a header rule hides one
# of the headers they are read from (the header names come from the conventions). The
# DLQ page's error groups carry two of them under short names.
DERIVED_TEXT_COLUMNS = {
    "dlq_error_class": "dlq_error_class", "error_class": "dlq_error_class",
    "dlq_error_message": "dlq_error_message", "error_message": "dlq_error_message",
    "dlq_stacktrace": "dlq_stacktrace",
}  # fmt: skip
# Text columns shown beside the payload that regex rules scan as well.
REGEX_TEXT_COLUMNS = ("dlq_error_message", "dlq_stacktrace", "error_message")


class MaskingRuleError(ValueError):
    """A rule that cannot be used; `field` names what is wrong (e.g. "json_path")."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


# --- JSON paths ---------------------------------------------------------------------------

Step = tuple[str, Any]  # ("key", name) | ("index", n) | ("wild", None) | ("descend", name|None)
_NAME = re.compile(r"[A-Za-z0-9_$@\-]+")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_STAR = re.compile(r"\[\s*\*\s*\]")


def parse_json_path(path: str) -> tuple[Step, ...]:
    """Steps of a JSONPath subset: `$`, `.name`, `.*`, `..name`, `..*`, `[n]`, `[*]`,
    `['name']`. Anything else (filters, slices, scripts) is refused, never evaluated."""
    text = path.strip()
    if not text.startswith("$"):
        raise MaskingRuleError("json_path", "must start with $ (e.g. $.customer.email)")
    steps: list[Step] = []
    position = 1
    while position < len(text):
        rest = text[position:]
        if rest.startswith(".."):
            name_match = _NAME.match(rest, 2)
            if rest[2:3] == "*":
                steps.append(("descend", None))
                position += 3
            elif name_match:
                steps.append(("descend", name_match.group()))
                position += name_match.end()
            else:
                raise MaskingRuleError("json_path", f"a name must follow '..' at {position}")
        elif rest.startswith("."):
            name_match = _NAME.match(rest, 1)
            if rest[1:2] == "*":
                steps.append(("wild", None))
                position += 2
            elif name_match:
                steps.append(("key", name_match.group()))
                position += name_match.end()
            else:
                raise MaskingRuleError("json_path", f"a name must follow '.' at {position}")
        elif match := _QUOTED.match(rest):
            quoted = match.group(1) if match.group(1) is not None else match.group(2)
            steps.append(("key", re.sub(r"\\(.)", r"\1", quoted)))
            position += match.end()
        elif match := _INDEX.match(rest):
            steps.append(("index", int(match.group(1))))
            position += match.end()
        elif match := _STAR.match(rest):
            steps.append(("wild", None))
            position += match.end()
        else:
            raise MaskingRuleError(
                "json_path", f"unsupported syntax at {position}: {rest[:20]!r} "
                "(use .name, ['name'], [n], [*], .*, ..name)",
            )  # fmt: skip
        if len(steps) > MAX_PATH_STEPS:
            raise MaskingRuleError("json_path", f"more than {MAX_PATH_STEPS} steps")
    if not steps:
        raise MaskingRuleError("json_path", "selects the whole document; name a field")
    return tuple(steps)


class _Counter:
    def __init__(self) -> None:
        self.hits = 0


def _apply_path(node: Any, steps: Sequence[Step], replacement: str, counter: _Counter) -> Any:
    """Replace what `steps` select under `node`; returns the (possibly new) node."""
    if not steps:
        counter.hits += 1
        return replacement
    (kind, arg), rest = steps[0], steps[1:]
    if kind == "key":
        if isinstance(node, dict) and arg in node:
            node[arg] = _apply_path(node[arg], rest, replacement, counter)
    elif kind == "index":
        if isinstance(node, list) and -len(node) <= arg < len(node):
            node[arg] = _apply_path(node[arg], rest, replacement, counter)
    elif kind == "wild":
        if isinstance(node, dict):
            for name in list(node):
                node[name] = _apply_path(node[name], rest, replacement, counter)
        elif isinstance(node, list):
            for index in range(len(node)):
                node[index] = _apply_path(node[index], rest, replacement, counter)
    elif kind == "descend":
        if isinstance(node, dict):
            for name in list(node):
                node[name] = _apply_path(node[name], steps, replacement, counter)
                if arg is None or name == arg:
                    node[name] = _apply_path(node[name], rest, replacement, counter)
        elif isinstance(node, list):
            for index in range(len(node)):
                node[index] = _apply_path(node[index], steps, replacement, counter)
                if arg is None:
                    node[index] = _apply_path(node[index], rest, replacement, counter)
    return node


# --- rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskRule:
    """One validated rule. Build it with `make_rule`, which compiles and checks it."""

    name: str
    kind: str  # "header" | "json_path" | "regex"
    pattern: str
    topics: str | None = None  # a regular expression the whole topic name must match
    replacement: str = REPLACEMENT
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    path: tuple[Step, ...] = field(default=(), compare=False, repr=False)
    topic_regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def applies_to_topic(self, topic: str) -> bool:
        return self.topic_regex is None or self.topic_regex.fullmatch(topic) is not None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "pattern": self.pattern,
                "topics": self.topics, "replacement": self.replacement}  # fmt: skip


def _compile(field_name: str, pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise MaskingRuleError(field_name, f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise MaskingRuleError(field_name, f"not a valid regular expression: {exc}") from None
    if compiled.fullmatch("") is not None:
        raise MaskingRuleError(field_name, "matches the empty string (it would match everywhere)")
    return compiled


def make_rule(
    name: str, kind: str, pattern: str, topics: str | None = None, replacement: str | None = None
) -> MaskRule:
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise MaskingRuleError("name", "1-100 printable characters")
    if kind not in KINDS:
        raise MaskingRuleError("kind", f"one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(pattern, str) or not pattern.strip():
        raise MaskingRuleError(kind, "must not be empty")
    replacement = REPLACEMENT if replacement is None else replacement
    if len(replacement) > 100 or not replacement.isprintable():
        raise MaskingRuleError("replacement", "at most 100 printable characters")
    topic_regex = None
    if topics is not None and topics.strip():
        topic_regex = _compile("topics", topics)
    else:
        topics = None
    if kind == "header":
        pattern = pattern.strip()
        if len(pattern) > 500:
            raise MaskingRuleError("header", "longer than 500 characters")
        return MaskRule(name, kind, pattern, topics, replacement, topic_regex=topic_regex)
    if kind == "json_path":
        path = parse_json_path(pattern)
        return MaskRule(name, kind, pattern.strip(), topics, replacement, path=path,
                        topic_regex=topic_regex)  # fmt: skip
    regex = _compile("regex", pattern)
    return MaskRule(name, kind, pattern, topics, replacement, regex=regex, topic_regex=topic_regex)


# --- masking bytes, text and headers ----------------------------------------------------------


def _regex_rules(rules: Iterable[MaskRule]) -> list[MaskRule]:
    return [rule for rule in rules if rule.regex is not None]


def mask_text(text: str, rules: Sequence[MaskRule]) -> str:
    """Every regex rule applied to a text (the replacement is literal, never a template)."""
    for rule in _regex_rules(rules):
        assert rule.regex is not None
        text = rule.regex.sub(lambda _m, r=rule.replacement: r, text)  # type: ignore[misc]
    return text


def _mask_raw_bytes(raw: bytes, rules: Sequence[MaskRule]) -> bytes:
    """Regex rules over bytes that are not UTF-8: each byte is one character (latin-1)."""
    text = raw.decode("latin-1")
    pieces: list[bytes] = []
    for rule in _regex_rules(rules):
        assert rule.regex is not None
        pieces.clear()
        position = 0
        for match in rule.regex.finditer(text):
            pieces.append(text[position : match.start()].encode("latin-1"))
            pieces.append(rule.replacement.encode("utf-8"))
            position = match.end()
        if pieces:
            pieces.append(text[position:].encode("latin-1"))
            text = b"".join(pieces).decode("latin-1")
    return text.encode("latin-1")


def _mask_json_leaves(node: Any, rules: Sequence[MaskRule], counter: _Counter) -> Any:
    if isinstance(node, dict):
        for name in list(node):
            node[name] = _mask_json_leaves(node[name], rules, counter)
        return node
    if isinstance(node, list):
        for index in range(len(node)):
            node[index] = _mask_json_leaves(node[index], rules, counter)
        return node
    if isinstance(node, str) or (isinstance(node, int | float) and not isinstance(node, bool)):
        text = node if isinstance(node, str) else json.dumps(node)
        masked = mask_text(text, rules)
        if masked != text:
            counter.hits += 1
            return masked
    return node


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


_SCALAR = r'"(?:[^"\\]|\\.)*"?|[^,}\]\s]+'


def _mask_broken_json(text: str, rules: Sequence[MaskRule]) -> str | None:
    """JSON that does not parse (truncated, say): mask the members the paths name by text.

    None when a path cannot be followed textually (it ends in an index or a wildcard):
    the caller then hides the whole payload rather than show what the path selects.
    """
    for rule in rules:
        if not rule.path:
            continue
        kind, name = rule.path[-1]
        if kind not in ("key", "descend") or name is None:
            return None
        quoted = re.escape(json.dumps(name, ensure_ascii=False))
        member = re.compile(rf"({quoted}\s*:\s*)(?:{_SCALAR}|[{{\[].*)", re.DOTALL)
        replacement = json.dumps(rule.replacement, ensure_ascii=False)
        text = member.sub(lambda m, r=replacement: m.group(1) + r, text)  # type: ignore[misc]
    return text


def mask_payload(value: bytes | None, rules: Sequence[MaskRule]) -> bytes | None:
    """A value or key with the JSON-path and regex rules applied (header rules ignored)."""
    if value is None or not value:
        return value
    path_rules = [rule for rule in rules if rule.path]
    regex_rules = _regex_rules(rules)
    if not path_rules and not regex_rules:
        return value
    if len(value) > SCAN_CAP:
        return (rules[0].replacement if rules else REPLACEMENT).encode()
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return _mask_raw_bytes(value, regex_rules) if regex_rules else value
    if not _looks_like_json(text):
        return mask_text(text, regex_rules).encode("utf-8")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = _BROKEN
    if document is _BROKEN:
        broken = _mask_broken_json(text, path_rules) if path_rules else text
        if broken is None:
            return json.dumps(path_rules[0].replacement).encode()
        return mask_text(broken, regex_rules).encode("utf-8")
    counter = _Counter()
    try:
        for rule in path_rules:
            document = _apply_path(document, rule.path, rule.replacement, counter)
        if regex_rules:
            document = _mask_json_leaves(document, regex_rules, counter)
    except RecursionError:  # nested too deep to walk: hide it rather than show it
        return json.dumps(rules[0].replacement).encode()
    if counter.hits == 0:
        return value
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


_BROKEN = object()


def header_rule_names(rules: Iterable[MaskRule]) -> set[str]:
    return {rule.pattern.lower() for rule in rules if rule.kind == "header"}


def _mask_header_value(value: Any, rules: Sequence[MaskRule]) -> Any:
    if isinstance(value, str):
        return mask_text(value, rules)
    if isinstance(value, dict) and "text" in value:
        return {**value, "text": mask_text(str(value["text"]), rules)}
    if isinstance(value, dict) and "b64" in value:
        try:
            raw = base64.b64decode(str(value["b64"]), validate=True)
        except ValueError:
            return REPLACEMENT
        masked = _mask_raw_bytes(raw, rules)
        if masked == raw:
            return value
        return {**value, "b64": base64.b64encode(masked).decode()}
    return value


def mask_headers(headers_json: str, rules: Sequence[MaskRule]) -> str:
    """The stored headers (a JSON list of [name, value]) with header and regex rules applied."""
    hidden = header_rule_names(rules)
    regex_rules = _regex_rules(rules)
    if not hidden and not regex_rules:
        return headers_json
    try:
        entries = json.loads(headers_json)
    except (ValueError, RecursionError):
        return "[]"  # unreadable: show nothing rather than the raw text
    if not isinstance(entries, list):
        return "[]"
    masked: list[Any] = []
    for entry in entries:
        if not isinstance(entry, list) or len(entry) != 2:
            continue
        name, value = entry
        if str(name).lower() in hidden:
            replacement = next(
                r.replacement for r in rules if r.pattern.lower() == str(name).lower()
            )
            masked.append([name, None if value is None else replacement])
        else:
            masked.append([name, _mask_header_value(value, regex_rules)])
    return json.dumps(masked, ensure_ascii=False)


# --- whole records and who sees what ---------------------------------------------------------


@dataclass(frozen=True)
class MaskingPolicy:
    """The rules in force and whom they apply to.

    `derived_from` maps index columns the collector read from headers (dead-letter error
    text) to those header names, so that hiding the header hides the column too.
    """

    rules: tuple[MaskRule, ...] = ()
    apply_to: str = "viewers"
    derived_from: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def applies_to(self, role: str | None) -> bool:
        """Viewers (and unknown callers) always get masked records; operators and admins
        too when `apply_to` is "everyone"."""
        if not self.rules:
            return False
        return role not in ("operator", "admin") or self.apply_to == "everyone"

    def rules_for(self, topic: str) -> list[MaskRule]:
        return [rule for rule in self.rules if rule.applies_to_topic(topic)]


def mask_event(row: Mapping[str, Any], policy: MaskingPolicy, role: str | None) -> dict[str, Any]:
    """A copy of an index row (any subset of the events columns) as `role` may see it."""
    out = dict(row)
    if not policy.applies_to(role):
        return out
    rules = policy.rules_for(str(row.get("topic", "")))
    if not rules:
        return out
    if "value" in out:
        if out.get("decoded_value") is not None and out["value"]:
            # The rules read the decoded form; the bytes it came from would show what
            # they hide (Avro strings are plain in the bytes), so they are withheld.
            out["value"] = None
            out["value_withheld"] = True
        else:
            out["value"] = mask_payload(out["value"], rules)
    if "key" in out:
        out["key"] = mask_payload(out["key"], rules)
    for column in ("decoded_value", "decoded_key"):
        if isinstance(out.get(column), str):
            masked = mask_payload(out[column].encode("utf-8"), rules)
            out[column] = masked.decode("utf-8", "replace") if masked is not None else None
    if isinstance(out.get("headers"), str):
        out["headers"] = mask_headers(out["headers"], rules)
    hidden = header_rule_names(rules)
    for column, derived in DERIVED_TEXT_COLUMNS.items():
        sources = policy.derived_from.get(derived, ())
        if out.get(column) and hidden.intersection(name.lower() for name in sources):
            out[column] = rules[0].replacement
    for column in REGEX_TEXT_COLUMNS:
        if isinstance(out.get(column), str):
            out[column] = mask_text(out[column], rules)
    return out


RowMasker = Callable[[Mapping[str, Any]], dict[str, Any]]


def masker(policy: MaskingPolicy, role: str | None) -> RowMasker:
    """`mask_event` bound to one caller, for views that mask many rows."""
    if not policy.applies_to(role):
        return dict
    return lambda row: mask_event(row, policy, role)
