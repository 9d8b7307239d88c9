"""The ``[alerts]`` section: evaluation and grouping timing, rules, receivers, retries.

::

    [alerts]
    evaluate_interval_s = 15
    group_by = ["alertname", "cluster"]
    group_wait = "30s"          # Alertmanager's defaults
    group_interval = "5m"
    repeat_interval = "4h"
    send_resolved = true

    [[alerts.rules]]            # see console/alerts/rules.py
    ...

    [[alerts.receivers]]
    name = "oncall"
    url = "https://hooks.example.com/eventscope"
    secret = "whsec_..."        # optional: sign deliveries (Standard Webhooks)
    headers = { Authorization = "Bearer ..." }
    timeout = "10s"

Errors are AlertConfigError with the dotted key (``rules[2].threshold``) so that the
configuration loader can prefix ``alerts.`` and name the exact setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from collectors.config import Settings
from console.alerts.grouping import GroupTiming
from console.alerts.retry_policy import RetryPolicy
from console.alerts.rules import Rule, RuleError, parse_duration, rule_from_mapping
from console.alerts.signing import secret_key

KNOWN_KEYS = (
    "evaluate_interval_s",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "send_resolved",
    "external_url",
    "rules",
    "receivers",
    "retry_max_age",
    "retry_max_delay",
    "builtin_rules",
)
# On unless `builtin_rules = false`: the failures nobody would otherwise hear of. A rule of
# the same name in the configuration replaces one of these.
BUILTIN_RULES = (
    {"name": "CollectorStalled", "kind": "collector_delay", "threshold": 120,
     "severity": "critical",
     "annotations": {"summary": "Records of {{ $labels.cluster }} reach the index "
                                "{{ $value }} s late, or not at all"}},
    {"name": "IndexWritesFailing", "kind": "index_writes", "severity": "critical",
     "annotations": {"summary": "Index writes of {{ $labels.cluster }} hang or fail"}},
    {"name": "ClusterUnreachable", "kind": "cluster_unreachable", "for": "1m",
     "severity": "critical",
     "annotations": {"summary": "Kafka cluster {{ $labels.cluster }} does not answer"}},
)  # fmt: skip
RECEIVER_KEYS = ("name", "url", "secret", "headers", "timeout", "max_alerts", "enabled")
# Headers eventscope sets itself; a receiver's custom headers may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "user-agent",
    }
)
_RECEIVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")


class AlertConfigError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str
    secret: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    max_alerts: int = 0
    enabled: bool = True


@dataclass(frozen=True)
class AlertSettings:
    evaluate_interval_s: float = 15.0
    group_by: tuple[str, ...] = ("alertname", "cluster")
    timing: GroupTiming = field(default_factory=GroupTiming)
    external_url: str | None = None
    rules: tuple[Rule, ...] = ()
    receivers: tuple[Receiver, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def alert_settings(data: Mapping[str, Any]) -> AlertSettings:
    """Check and build the section; raises AlertConfigError naming the key."""
    if not isinstance(data, Mapping):
        raise AlertConfigError("alerts", "must be a table")
    for key in data:
        if key not in KNOWN_KEYS:
            raise AlertConfigError(str(key), f"unknown key (known: {', '.join(KNOWN_KEYS)})")
    interval = _duration(data, "evaluate_interval_s", 15.0)
    if interval < 1:
        raise AlertConfigError("evaluate_interval_s", "must be at least 1 second")
    group_by = data.get("group_by", ["alertname", "cluster"])
    if not isinstance(group_by, list) or not all(isinstance(n, str) for n in group_by):
        raise AlertConfigError("group_by", "must be a list of label names (or ['...'])")
    send_resolved = data.get("send_resolved", True)
    if not isinstance(send_resolved, bool):
        raise AlertConfigError("send_resolved", "must be true or false")
    timing = GroupTiming(
        group_wait_s=_duration(data, "group_wait", 30.0),
        group_interval_s=_duration(data, "group_interval", 300.0),
        repeat_interval_s=_duration(data, "repeat_interval", 14_400.0),
        send_resolved=send_resolved,
    )
    if timing.group_interval_s <= 0 or timing.repeat_interval_s <= 0:
        raise AlertConfigError("group_interval", "group_interval and repeat_interval must be > 0")
    external_url = data.get("external_url")
    if external_url is not None:
        _check_url("external_url", external_url)
    max_age = _duration(data, "retry_max_age", 24 * 3600.0)
    max_delay = _duration(data, "retry_max_delay", 300.0)
    try:
        retry = RetryPolicy(max_s=max(1.0, max_delay), max_age_s=max_age)
    except ValueError as exc:
        raise AlertConfigError("retry_max_delay", str(exc)) from None
    rules = _rules(data.get("rules", []))
    builtin = data.get("builtin_rules", True)
    if not isinstance(builtin, bool):
        raise AlertConfigError("builtin_rules", "must be true or false")
    if builtin:
        taken = {rule.name for rule in rules}
        rules += tuple(
            rule_from_mapping(body, source="builtin")
            for body in BUILTIN_RULES
            if body["name"] not in taken
        )
    receivers = _receivers(data.get("receivers", []))
    return AlertSettings(
        evaluate_interval_s=interval,
        group_by=tuple(group_by),
        timing=timing,
        external_url=external_url,
        rules=rules,
        receivers=receivers,
        retry=retry,
    )


def _rules(raw: Any) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        raise AlertConfigError("rules", "must be an array of tables ([[alerts.rules]])")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, body in enumerate(raw):
        try:
            rule = rule_from_mapping(body, source="config")
        except RuleError as exc:
            raise AlertConfigError(f"rules[{index}].{exc.key}", exc.message) from None
        if rule.name in seen:
            raise AlertConfigError(f"rules[{index}].name", f"{rule.name!r} is defined twice")
        seen.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def _receivers(raw: Any) -> tuple[Receiver, ...]:
    if not isinstance(raw, list):
        raise AlertConfigError("receivers", "must be an array of tables ([[alerts.receivers]])")
    receivers: list[Receiver] = []
    seen: set[str] = set()
    for index, body in enumerate(raw):
        try:
            receiver = receiver_from_mapping(body)
        except AlertConfigError as exc:
            raise AlertConfigError(f"receivers[{index}].{exc.key}", exc.message) from None
        if receiver.name in seen:
            raise AlertConfigError(f"receivers[{index}].name", f"{receiver.name!r} twice")
        seen.add(receiver.name)
        receivers.append(receiver)
    return tuple(receivers)


def receiver_from_mapping(body: Any) -> Receiver:
    """Check one receiver (from the configuration or the console's form)."""
    if not isinstance(body, Mapping):
        raise AlertConfigError("receiver", "must be a table")
    for key in body:
        if key not in RECEIVER_KEYS:
            raise AlertConfigError(str(key), f"unknown key (known: {', '.join(RECEIVER_KEYS)})")
    name = body.get("name")
    if not isinstance(name, str) or not _RECEIVER_NAME.fullmatch(name):
        raise AlertConfigError("name", "1-100 letters, digits, '_', '.' or '-'")
    url = body.get("url")
    _check_url("url", url)
    secret = body.get("secret")
    if secret is not None:
        if not isinstance(secret, str):
            raise AlertConfigError("secret", "must be a string (whsec_...)")
        try:
            secret_key(secret)
        except ValueError as exc:
            raise AlertConfigError("secret", str(exc)) from None
    headers = body.get("headers", {})
    if not isinstance(headers, Mapping):
        raise AlertConfigError("headers", "must be a table of header names to strings")
    clean: dict[str, str] = {}
    for header, value in headers.items():
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise AlertConfigError(f"headers.{header}", "not a valid header name")
        if header.lower() in RESERVED_HEADERS:
            raise AlertConfigError(f"headers.{header}", "is set by eventscope")
        if not isinstance(value, str) or len(value) > 4000 or any(c in value for c in "\r\n\0"):
            raise AlertConfigError(f"headers.{header}", "must be a one-line string")
        clean[header] = value
    timeout = _duration(body, "timeout", 10.0)
    if not 0 < timeout <= 120:
        raise AlertConfigError("timeout", "must be between 0 and 2m")
    max_alerts = body.get("max_alerts", 0)
    if isinstance(max_alerts, bool) or not isinstance(max_alerts, int) or max_alerts < 0:
        raise AlertConfigError("max_alerts", "must be an integer >= 0 (0: no limit)")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise AlertConfigError("enabled", "must be true or false")
    return Receiver(
        name=name,
        url=str(url),
        secret=secret,
        headers=clean,
        timeout_s=timeout,
        max_alerts=max_alerts,
        enabled=enabled,
    )


def _duration(data: Mapping[str, Any], key: str, default: float) -> float:
    if key not in data:
        return default
    try:
        return parse_duration(data[key], key)
    except RuleError as exc:
        raise AlertConfigError(exc.key, exc.message) from None


def _check_url(key: str, url: Any) -> None:
    if not isinstance(url, str) or len(url) > 2000:
        raise AlertConfigError(key, "must be an http:// or https:// URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertConfigError(key, f"must be an http:// or https:// URL, got {url!r}")


def external_url(settings: Settings) -> str:
    """The console's address in notifications: alerts.external_url, server.external_url,
    else where it listens."""
    configured = settings.alerts.get("external_url") or settings.server.external_url
    return str(configured or f"http://{settings.server.host}:{settings.server.port}")
