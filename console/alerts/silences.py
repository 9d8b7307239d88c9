"""Silences: label matchers that mute notifications until they expire (as in Alertmanager).

A silence matches an alert when every one of its matchers equals the alert's label of the
same name. A silenced alert still moves through pending -> firing -> resolved and is shown
on the Alerts page; it is only left out of notifications. Expiring a silence sets its end to
now, so the history keeps it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from collectors.index.alert_models import alert_silences_table

MAX_DURATION_S = 366 * 86_400
MAX_COMMENT = 1000
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SilenceError(ValueError):
    """A silence request is invalid (bad matchers, duration or comment)."""


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: Mapping[str, str]
    comment: str
    created_by: str
    created_at_ms: int
    starts_at_ms: int
    ends_at_ms: int

    def active(self, now_ms: int) -> bool:
        return self.starts_at_ms <= now_ms < self.ends_at_ms

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.matchers.items())

    def as_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "comment": self.comment,
            "createdBy": self.created_by,
            "createdAtMs": self.created_at_ms,
            "startsAtMs": self.starts_at_ms,
            "endsAtMs": self.ends_at_ms,
            "status": "active" if self.active(now_ms) else "expired",
        }


def check_matchers(matchers: Any) -> dict[str, str]:
    if not isinstance(matchers, Mapping) or not matchers:
        raise SilenceError("a silence needs at least one label matcher")
    if len(matchers) > 40:
        raise SilenceError("at most 40 matchers")
    clean: dict[str, str] = {}
    for name, value in matchers.items():
        if not isinstance(name, str) or not _LABEL.fullmatch(name):
            raise SilenceError(f"matcher name {str(name)[:100]!r} is not a label name")
        if not isinstance(value, str) or len(value) > 2000:
            raise SilenceError(f"matcher {name} must be a string of at most 2000 characters")
        clean[name] = value
    return clean


def create_silence(
    connection: Connection,
    matchers: Mapping[str, str],
    duration_s: float,
    comment: str,
    created_by: str,
    now_ms: int,
) -> int:
    clean = check_matchers(matchers)
    if not 0 < duration_s <= MAX_DURATION_S:
        raise SilenceError("the duration must be between 1 second and 366 days")
    if len(comment) > MAX_COMMENT:
        raise SilenceError(f"the comment is longer than {MAX_COMMENT} characters")
    result = connection.execute(
        insert(alert_silences_table).values(
            matchers=json.dumps(clean, sort_keys=True),
            comment=comment.strip(),
            created_by=created_by[:200],
            created_at_ms=now_ms,
            starts_at_ms=now_ms,
            ends_at_ms=now_ms + int(duration_s * 1000),
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def expire_silence(connection: Connection, silence_id: int, now_ms: int) -> bool:
    """End a silence now; False when it does not exist or has already ended."""
    columns = alert_silences_table.c
    result = connection.execute(
        update(alert_silences_table)
        .where(columns.id == silence_id, columns.ends_at_ms > now_ms)
        .values(ends_at_ms=now_ms)
    )
    return bool(result.rowcount)


def load_silences(
    connection: Connection, now_ms: int, *, expired_within_ms: int = 0
) -> list[Silence]:
    """Active silences, plus those that ended within ``expired_within_ms`` (for the page)."""
    columns = alert_silences_table.c
    rows = connection.execute(
        select(alert_silences_table)
        .where(columns.ends_at_ms > now_ms - expired_within_ms)
        .order_by(columns.ends_at_ms.desc())
        .limit(500)
    )
    silences = []
    for row in rows:
        try:
            matchers = check_matchers(json.loads(row.matchers))
        except (ValueError, TypeError):
            continue  # a damaged row silences nothing
        silences.append(
            Silence(
                id=row.id,
                matchers=matchers,
                comment=row.comment,
                created_by=row.created_by,
                created_at_ms=row.created_at_ms,
                starts_at_ms=row.starts_at_ms,
                ends_at_ms=row.ends_at_ms,
            )
        )
    return silences


def silenced_by(
    labels: Mapping[str, str], silences: Sequence[Silence], now_ms: int
) -> Silence | None:
    for silence in silences:
        if silence.active(now_ms) and silence.matches(labels):
            return silence
    return None
