"""When an alert group notifies, following Alertmanager's aggregation-group timing.

Alerts sharing the same values of the route's ``group_by`` labels form a group, and a
group notifies as a whole:

* a new group waits ``group_wait`` before its first notification, so alerts that fire
  together arrive together (nothing is sent if everything resolved in the meantime);
* after that, a change waits until ``group_interval`` has passed since the last
  notification. A change is an alert firing that was not firing in the last notification,
  every alert having resolved since a notification that had firing ones, or - only when
  ``send_resolved`` is on - an alert newly resolved. Alerts that merely disappear from the
  group do not count, and with ``send_resolved`` off a resolution alone is not news;
* an unchanged group with firing alerts repeats after ``repeat_interval``; a group whose
  "all resolved" notification was sent stays quiet.

This module is pure: callers keep a GroupState per group (and store it), ask ``due`` or
``next_due_at``, send ``alerts_to_send``, then keep the state ``after_notification`` returns.
Alerts are given as ``(fingerprint, status)`` pairs; any status other than "resolved" is
taken as firing, so a live alert is never hidden.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FIRING = "firing"
RESOLVED = "resolved"
ALL_LABELS = "..."  # in group_by: group by every label, i.e. one group per label set


@dataclass(frozen=True, slots=True)
class GroupTiming:
    group_wait_s: float = 30
    group_interval_s: float = 300
    repeat_interval_s: float = 14400
    send_resolved: bool = True

    def __post_init__(self) -> None:
        for name in ("group_wait_s", "group_interval_s", "repeat_interval_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds >= 0")


@dataclass(slots=True)
class GroupState:
    """What the caller stores for one group between evaluations.

    ``last_notified_hash`` identifies what the last notification said (see
    ``notification_hash``); the two fingerprint sets record which alerts it reported firing
    and resolved, which is what tells a real change from an alert leaving the group.
    """

    created_at: float
    last_notified_at: float | None = None
    last_notified_hash: str | None = None
    last_notified_firing: frozenset[str] = field(default_factory=frozenset)
    last_notified_resolved: frozenset[str] = field(default_factory=frozenset)


def group_labels_of(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    """Return the labels that identify an alert's group, sorted by name.

    Names in ``group_by`` the alert lacks are left out. ``"..."`` anywhere in ``group_by``
    means every label. An empty ``group_by`` puts all alerts of a route in one group.
    """
    if not isinstance(labels, Mapping):
        return {}
    clean = {str(name): str(value) for name, value in labels.items()}
    names = [group_by] if isinstance(group_by, str) else list(group_by or ())
    if ALL_LABELS in names:
        return dict(sorted(clean.items()))
    wanted = sorted({str(name) for name in names})
    return {name: clean[name] for name in wanted if name in clean}


def notification_hash(alerts: Sequence[tuple[str, str]], *, send_resolved: bool = True) -> str:
    """Return a stable hash of what a notification reports: its (fingerprint, status) pairs.

    Order and duplicates do not matter. Resolved alerts are left out when ``send_resolved``
    is False, because they are not sent then.
    """
    firing, resolved = _split(alerts)
    pairs = sorted((fp, FIRING) for fp in firing)
    if send_resolved:
        pairs += sorted((fp, RESOLVED) for fp in resolved)
    canonical = json.dumps(pairs, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def next_due_at(
    state: GroupState, alerts: Sequence[tuple[str, str]], timing: GroupTiming
) -> float | None:
    """Return the earliest time the group should notify with these alerts, or None for never.

    The time may be in the past: then the notification is due now.
    """
    firing, resolved = _split(alerts)
    if state.last_notified_at is None:
        return state.created_at + timing.group_wait_s if firing else None

    sent_firing = frozenset(state.last_notified_firing)
    sent_resolved = frozenset(state.last_notified_resolved)
    if firing - sent_firing:
        changed = True
    elif not firing:
        # Everything resolved: worth one notification if the last one had firing alerts.
        if not (timing.send_resolved and sent_firing):
            return None
        changed = True
    else:
        changed = timing.send_resolved and bool(resolved - sent_resolved)

    wait = timing.group_interval_s if changed else timing.repeat_interval_s
    return state.last_notified_at + wait


def due(
    state: GroupState, alerts: Sequence[tuple[str, str]], now: float, timing: GroupTiming
) -> bool:
    """True when the group should send a notification now."""
    when = next_due_at(state, alerts, timing)
    return when is not None and now >= when


def alerts_to_send(alerts: Sequence[tuple[str, str]], timing: GroupTiming) -> list[tuple[str, str]]:
    """The (fingerprint, status) pairs a notification carries, firing first, each once."""
    firing, resolved = _split(alerts)
    chosen = [(fp, FIRING) for fp in sorted(firing)]
    if timing.send_resolved:
        chosen += [(fp, RESOLVED) for fp in sorted(resolved)]
    return chosen


def after_notification(
    state: GroupState, alerts: Sequence[tuple[str, str]], now: float, timing: GroupTiming
) -> GroupState:
    """Return the group's state once a notification with these alerts has been delivered."""
    firing, resolved = _split(alerts)
    return GroupState(
        created_at=state.created_at,
        last_notified_at=now,
        last_notified_hash=notification_hash(alerts, send_resolved=timing.send_resolved),
        last_notified_firing=frozenset(firing),
        last_notified_resolved=frozenset(resolved),
    )


def _split(alerts: Sequence[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """Fingerprints firing and resolved; an alert listed as both counts as firing."""
    firing: set[str] = set()
    resolved: set[str] = set()
    for item in alerts or ():
        if not isinstance(item, tuple | list) or len(item) != 2:
            continue
        fp, status = str(item[0]), item[1]
        (resolved if status == RESOLVED else firing).add(fp)
    return firing, resolved - firing
