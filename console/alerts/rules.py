"""Alert rules: what each kind watches, and how a rule is written and checked.

A rule is written the same way in the configuration file (``[[alerts.rules]]``) and in the
console's editor (stored as JSON in ``alert_rules``)::

    name = "OrdersLagging"          # becomes the alertname label
    kind = "offset_lag"             # see KINDS
    group = "orders-*"              # which consumer groups (glob); cluster = "*" likewise
    threshold = 1000                # messages
    for = "5m"                      # must hold this long before the alert fires
    severity = "warning"            # critical, warning or info
    labels = { team = "payments" }
    annotations = { summary = "{{ $labels.group }} is {{ $value }} messages behind" }
    receivers = ["oncall"]          # empty: every receiver

Parsing never trusts its input: every error is a RuleError naming the offending key.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors.config import ConfigError

SEVERITIES = ("critical", "warning", "info")
GROUP_STATUSES = ("WARN", "ERR", "NOTFOUND")
SAGA_STATUSES = ("failed", "stuck", "compensation_incomplete")

# kind -> (what it watches, required parameters, optional parameters)
KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "group_status": (
        "a consumer group's Burrow status is one of `statuses` (default WARN, ERR)",
        (),
        ("group", "statuses"),
    ),
    "offset_lag": (
        "a consumer group's total offset lag is above `threshold` messages",
        ("threshold",),
        ("group",),
    ),
    "time_lag": (
        "a consumer group's time lag is above `threshold` seconds",
        ("threshold",),
        ("group",),
    ),
    "dlq": (
        "more than `threshold` dead-letter messages (default 0: any) arrived within `window`",
        (),
        ("topic", "threshold", "window"),
    ),
    "saga": (
        "sagas turned to one of `statuses` (failed, stuck, compensation_incomplete) "
        "within `window` (0: any time)",
        (),
        ("saga_type", "statuses", "window"),
    ),
    "topic_silent": ("no event was indexed on a topic for `window`", ("window",), ("topic",)),
    "collector_delay": (
        "the collector indexes records more than `threshold` seconds after they were written",
        ("threshold",),
        (),
    ),
    "cluster_unreachable": ("the cluster does not answer", (), ()),
    "connector_failed": (
        "a Kafka Connect connector, or one of its tasks, is FAILED",
        (),
        ("connector",),
    ),
    "index_writes": ("a collector's index writes hang or fail", (), ()),
    "duplicate_events": (
        "more than `threshold` duplicate copies of events (one event id indexed again on a "
        "topic; retry and dead-letter copies not counted) within `window` (default 1h)",
        (),
        ("topic", "threshold", "window"),
    ),
    "ordering_breaks": (
        "more than `threshold` ordering breaks (keys on several partitions of a topic, or a "
        "key's configured sequence going backwards) within `window` (default 1h)",
        (),
        ("topic", "threshold", "window"),
    ),
    "shape_drift": (
        "an event type's payload shape changed (a field added, gone or with another type) "
        "more than `threshold` times within `window` (default 1h), on topics matching `topic`",
        (),
        ("topic", "threshold", "window"),
    ),
    "duplicate_processing": (
        "more than `threshold` records processed more than once by one consumer group "
        "(consumer spans naming the same record) within `window` (default 1h)",
        (),
        ("group", "topic", "threshold", "window"),
    ),
}
COMMON_KEYS = (
    "name",
    "kind",
    "cluster",
    "for",
    "keep_firing_for",
    "severity",
    "labels",
    "annotations",
    "receivers",
    "enabled",
)
DEFAULT_WINDOW_S = {
    "dlq": 300.0,
    "saga": 3600.0,
    "duplicate_events": 3600.0,
    "ordering_breaks": 3600.0,
    "duplicate_processing": 3600.0,
    "shape_drift": 3600.0,
}
# Kinds that look at what happened within `window`: a window of 0 would see nothing.
WINDOWED_KINDS = ("topic_silent", "duplicate_events", "ordering_breaks", "duplicate_processing",
                  "shape_drift")  # fmt: skip

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_TEMPLATE = re.compile(r"\{\{\s*\$(value|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}")
MAX_TEXT = 2000
MAX_PAIRS = 40


class RuleError(ConfigError):
    """A rule is invalid; ``key`` names the field (``threshold``, ``labels.team``, ...)."""


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    severity: str = "warning"
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0  # a firing alert stays firing this long after it clears
    cluster: str = "*"
    group: str = "*"
    topic: str = "*"
    saga_type: str = "*"
    connector: str = "*"
    threshold: float = 0.0
    window_s: float = 0.0
    statuses: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    receivers: tuple[str, ...] = ()
    enabled: bool = True
    source: str = "config"  # config, console or builtin (on unless alerts.builtin_rules = false)

    def describe(self) -> str:
        return KINDS[self.kind][0]

    def to_mapping(self) -> dict[str, Any]:
        """The rule as it is written (the inverse of ``rule_from_mapping``)."""
        required, optional = KINDS[self.kind][1], KINDS[self.kind][2]
        data: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.cluster != "*":
            data["cluster"] = self.cluster
        values = {
            "group": self.group,
            "topic": self.topic,
            "saga_type": self.saga_type,
            "connector": self.connector,
            "threshold": self.threshold,
            "window": format_duration(self.window_s),
            "statuses": list(self.statuses),
        }
        for key in (*required, *optional):
            data[key] = values[key]
        data["for"] = format_duration(self.for_s)
        data["keep_firing_for"] = format_duration(self.keep_firing_for_s)
        data["severity"] = self.severity
        data["labels"] = dict(self.labels)
        data["annotations"] = dict(self.annotations)
        data["receivers"] = list(self.receivers)
        data["enabled"] = self.enabled
        return data

    def matches_cluster(self, cluster: str) -> bool:
        return glob_match(self.cluster, cluster)


def glob_match(pattern: str, value: str) -> bool:
    """Shell-style match (``*``, ``?``, ``[...]``), case-sensitive, as topic names are."""
    return fnmatch.fnmatchcase(value, pattern)


def parse_duration(value: Any, key: str) -> float:
    """Seconds from a number or a Prometheus-style duration: ``90``, ``30s``, ``5m``, ``1h30m``."""
    if isinstance(value, bool):
        raise RuleError(key, f"must be a duration such as 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                raise RuleError(key, f"must be a duration such as 30s, 5m or 1h, got {value!r}")
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    else:
        raise RuleError(key, f"must be a duration such as 30s, 5m or 1h, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0 or seconds > 366 * 86_400:
        raise RuleError(key, "must be between 0 and 366 days")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style spelling of whole seconds (``0s``, ``90s`` -> ``1m30s``)."""
    whole = round(seconds)
    if whole == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            out.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(out)


def rule_from_mapping(data: Any, source: str = "config") -> Rule:
    """Check and build a rule; raises RuleError naming the first bad key."""
    if not isinstance(data, Mapping):
        raise RuleError("rule", "must be a table")
    name = _text(data, "name", required=True)
    if not _NAME.fullmatch(name) or len(name) > 100:
        raise RuleError("name", "use letters, digits and '_' (not starting with a digit)")
    kind = _text(data, "kind", required=True)
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    _, required, optional = KINDS[kind]
    for key in data:
        if key not in COMMON_KEYS and key not in required and key not in optional:
            allowed = ", ".join((*COMMON_KEYS, *required, *optional))
            raise RuleError(str(key), f"unknown key for kind {kind!r} (known: {allowed})")
    for key in required:
        if key not in data:
            raise RuleError(key, f"required for kind {kind!r}")
    severity = _text(data, "severity") or "warning"
    if severity not in SEVERITIES:
        raise RuleError("severity", f"must be one of {', '.join(SEVERITIES)}")
    values: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "severity": severity,
        "for_s": parse_duration(data.get("for", 0), "for"),
        "keep_firing_for_s": parse_duration(data.get("keep_firing_for", 0), "keep_firing_for"),
        "cluster": _glob(data, "cluster"),
        "group": _glob(data, "group"),
        "topic": _glob(data, "topic"),
        "saga_type": _glob(data, "saga_type"),
        "connector": _glob(data, "connector"),
        "labels": _pairs(data, "labels", labels=True),
        "annotations": _pairs(data, "annotations", labels=False),
        "receivers": _names(data, "receivers"),
        "enabled": _flag(data, "enabled"),
        "source": source,
        "window_s": DEFAULT_WINDOW_S.get(kind, 0.0),
    }
    if "window" in data:
        values["window_s"] = parse_duration(data["window"], "window")
        if kind in WINDOWED_KINDS and values["window_s"] <= 0:
            raise RuleError("window", "must be longer than 0s")
    if "threshold" in data:
        values["threshold"] = _number(data, "threshold")
    if kind == "group_status":
        values["statuses"] = _choices(data, "statuses", GROUP_STATUSES, ("WARN", "ERR"))
    elif kind == "saga":
        values["statuses"] = _choices(data, "statuses", SAGA_STATUSES, SAGA_STATUSES)
    return Rule(**values)


def render(template: str, labels: Mapping[str, str], value: float | None) -> str:
    """Fill ``{{ $labels.name }}`` and ``{{ $value }}``; nothing else is interpreted."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) == "value":
            return format_value(value)
        return labels.get(match.group(2), "")

    return _TEMPLATE.sub(fill, template)[:MAX_TEXT]


def format_value(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise RuleError(key, "required")
        return ""
    if not isinstance(value, str):
        raise RuleError(key, f"must be a string, got {value!r}")
    value = value.strip()
    if required and not value:
        raise RuleError(key, "required")
    if len(value) > MAX_TEXT:
        raise RuleError(key, f"longer than {MAX_TEXT} characters")
    return value


def _glob(data: Mapping[str, Any], key: str) -> str:
    return _text(data, key) or "*"


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise RuleError(key, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(key, f"must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise RuleError(key, "must be a finite number >= 0")
    return float(value)


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, True)
    if not isinstance(value, bool):
        raise RuleError(key, "must be true or false")
    return value


def _pairs(data: Mapping[str, Any], key: str, *, labels: bool) -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise RuleError(key, "must be a table of names to strings")
    if len(value) > MAX_PAIRS:
        raise RuleError(key, f"at most {MAX_PAIRS} entries")
    out: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _LABEL.fullmatch(name):
            raise RuleError(f"{key}.{name}", "names use letters, digits and '_'")
        if labels and name in ("alertname", "severity"):
            raise RuleError(f"{key}.{name}", "is set from the rule's name and severity")
        if not isinstance(text, str):
            raise RuleError(f"{key}.{name}", f"must be a string, got {text!r}")
        if len(text) > MAX_TEXT:
            raise RuleError(f"{key}.{name}", f"longer than {MAX_TEXT} characters")
        out[name] = text
    return out


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RuleError(key, "must be a list of names")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _choices(
    data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: tuple[str, ...]
) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RuleError(key, f"must be a non-empty list of {', '.join(allowed)}")
    for each in value:
        if each not in allowed:
            raise RuleError(key, f"{each!r} is not one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))
