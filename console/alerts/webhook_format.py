"""The Alertmanager version-4 webhook body, built from eventscope alert instances.

Many receivers (chat bridges, incident tools, home-grown scripts) already parse what
Prometheus Alertmanager posts, so eventscope sends exactly that shape: same key names, same
types, the same identifiers for an alert (``fingerprint``) and for a group (``groupKey``).

Values come from user-defined rules and from message data, so every text is coerced to a
valid UTF-8 ``str`` and nothing here raises on odd input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WEBHOOK_VERSION = "4"
FIRING = "firing"
RESOLVED = "resolved"

# Go's zero time, which Alertmanager sends as ``endsAt`` while an alert is still firing.
ZERO_TIME = "0001-01-01T00:00:00Z"

# 64-bit FNV-1a, and the byte that cannot occur in UTF-8 used between names and values.
_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = 0xFF

# Characters Go's strconv.Quote writes as short escapes inside a quoted label value.
_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


@dataclass(frozen=True, slots=True)
class AlertInstance:
    """One alert of a group as it is reported to a receiver."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while firing
    generator_url: str
    status: str  # "firing" | "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Return the 16-hex-digit identity of a label set, the same value Alertmanager shows.

    Scheme: 64-bit FNV-1a over the labels sorted by name (UTF-8 byte order), feeding for each
    label its name, a 0xFF byte, its value and another 0xFF byte. 0xFF never occurs in UTF-8,
    so no two different label sets produce the same byte stream. The empty set hashes to the
    FNV offset basis. Rendered as 16 lowercase hex digits, zero padded.
    """
    pairs = sorted((_utf8(name), _utf8(value)) for name, value in _text_map(labels).items())
    digest = _FNV64_OFFSET
    for name, value in pairs:
        for chunk in (name, value):
            for byte in chunk:
                digest = ((digest ^ byte) * _FNV64_PRIME) & _MASK64
            digest = ((digest ^ _SEPARATOR) * _FNV64_PRIME) & _MASK64
    return f"{digest:016x}"


def group_key(route_id: str, group_labels: Mapping[str, str]) -> str:
    """Return the group's identity as Alertmanager writes it: ``<route>:<label set>``.

    The route part identifies the routing-tree node (``{}`` for the root); the label set is
    written like Prometheus does, e.g. ``{}:{alertname="LagHigh", topic="orders"}``.
    """
    return f"{_text(route_id)}:{format_label_set(group_labels)}"


def format_label_set(labels: Mapping[str, str]) -> str:
    """Write labels sorted by name as ``{a="x", b="y"}`` with Go-style quoted values."""
    items = sorted(_text_map(labels).items(), key=lambda item: _utf8(item[0]))
    return "{" + ", ".join(f"{name}={_go_quote(value)}" for name, value in items) + "}"


def build_webhook_body(
    *,
    receiver: str,
    group_labels: Mapping[str, str],
    alerts: Sequence[AlertInstance],
    external_url: str,
    route_id: str = "{}",
    max_alerts: int = 0,
) -> dict[str, Any]:
    """Build the version-4 webhook body for one notification of an alert group.

    ``status`` is "firing" when any alert fires, else "resolved". ``commonLabels`` and
    ``commonAnnotations`` hold the pairs every alert shares, computed over all alerts even
    when ``max_alerts`` (> 0) truncates the list; ``truncatedAlerts`` counts the ones left
    out. Alerts keep the order given.
    """
    every_alert = [alert for alert in alerts if isinstance(alert, AlertInstance)]
    limit = max_alerts if isinstance(max_alerts, int) and max_alerts > 0 else 0
    shown = every_alert[:limit] if limit else every_alert
    any_firing = any(_status_of(alert) == FIRING for alert in every_alert)
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": group_key(route_id, group_labels),
        "truncatedAlerts": len(every_alert) - len(shown),
        "status": FIRING if any_firing else RESOLVED,
        "receiver": _text(receiver),
        "groupLabels": _text_map(group_labels),
        "commonLabels": _common_pairs([alert.labels for alert in every_alert]),
        "commonAnnotations": _common_pairs([alert.annotations for alert in every_alert]),
        "externalURL": _text(external_url),
        "alerts": [_alert_entry(alert) for alert in shown],
    }


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Serialise a body as compact UTF-8 JSON with sorted keys: the exact bytes signed and sent.

    Raises ValueError for values JSON cannot represent (NaN, infinities, arbitrary objects).
    """
    try:
        text = json.dumps(
            body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, RecursionError) as exc:
        raise ValueError(f"webhook body is not JSON-serialisable: {exc}") from None
    return text.encode("utf-8", errors="replace")


def format_time(moment: datetime | None) -> str:
    """Write a time as RFC 3339 in UTC with a ``Z`` suffix, like Go's JSON encoding of time.

    Fractional seconds appear only when non-zero, without trailing zeros. A naive datetime is
    taken to be UTC. None, or a time that cannot be expressed in UTC, gives Go's zero time.
    """
    if not isinstance(moment, datetime):
        return ZERO_TIME
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return ZERO_TIME
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _alert_entry(alert: AlertInstance) -> dict[str, Any]:
    status = _status_of(alert)
    return {
        "status": status,
        "labels": _text_map(alert.labels),
        "annotations": _text_map(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": ZERO_TIME if status == FIRING else format_time(alert.ends_at),
        "generatorURL": _text(alert.generator_url),
        "fingerprint": fingerprint(alert.labels),
    }


def _status_of(alert: AlertInstance) -> str:
    """Anything other than an explicit "resolved" counts as firing: never hide a live alert."""
    return RESOLVED if alert.status == RESOLVED else FIRING


def _common_pairs(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = _text_map(maps[0])
    for other in maps[1:]:
        other_pairs = _text_map(other)
        common = {key: value for key, value in common.items() if other_pairs.get(key) == value}
    return common


def _text(value: object) -> str:
    """Coerce to a str that encodes as UTF-8 (lone surrogates become U+FFFD)."""
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
    else:
        text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")


def _text_map(mapping: object) -> dict[str, str]:
    """Copy a label/annotation mapping as str -> str, sorted by name; non-mappings are empty."""
    if not isinstance(mapping, Mapping):
        return {}
    return dict(sorted((_text(key), _text(value)) for key, value in mapping.items()))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _go_quote(value: str) -> str:
    """Quote like Go's strconv.Quote: printable characters kept, the rest escaped."""
    out = ['"']
    for char in value:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)
