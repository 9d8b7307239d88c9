"""What a replay or redrive job asks for, read and checked from a JSON body or a form:
the kind, the cluster, the records (explicit coordinates or an event filter), the target
topic and the options. A bad value is a `RequestError` naming it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from console.stores import events as event_store
from console.stores.events import EventFilter, SearchError

KINDS = ("redrive", "replay")
MAX_ITEMS_LISTED = 10_000  # explicit coordinates in one request
MAX_RATE = 1_000_000.0
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
FILTER_FIELDS = (
    "topic", "partition", "time_from", "time_to", "offset_from", "offset_to", "key",
    "event_type", "source", "header_name", "header_value", "correlation_id", "event_id",
    "trace_id", "text", "json_path", "json_value", "dlq_only",
)  # fmt: skip
NARROWING_FIELDS = tuple(f for f in FILTER_FIELDS if f != "dlq_only")

Coordinates = tuple[str, int, int]


class RequestError(ValueError):
    """A job request that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class JobOptions:
    rate: float | None = None  # messages per second, None = as fast as possible
    dry_run: bool = False
    keep_error_headers: bool = False
    force: bool = False  # redrive records already redriven by an earlier job
    include_ended_sagas: bool = False  # send records of sagas that are over (held back else)


@dataclass(frozen=True)
class JobRequest:
    kind: str
    cluster: str
    items: tuple[Coordinates, ...] = ()
    filter_args: dict[str, str] = field(default_factory=dict)
    target_topic: str | None = None
    options: JobOptions = JobOptions()

    def selection_json(self) -> dict[str, Any]:
        if self.items:
            return {"items": [list(item) for item in self.items]}
        return {"filter": self.filter_args}

    def event_filter(self) -> EventFilter:
        f = event_store.parse_filter(self.filter_args)
        return replace(f, cluster=self.cluster, dlq_only=f.dlq_only or self.kind == "redrive")


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "on", "yes"))


def parse_coordinates(text: str) -> Coordinates:
    """`topic/partition/offset` (topic names cannot contain a slash)."""
    parts = text.rsplit("/", 2)
    if len(parts) != 3 or not TOPIC_NAME.fullmatch(parts[0]):
        raise RequestError(f"item {text[:100]!r}: expected topic/partition/offset")
    try:
        partition, offset = int(parts[1]), int(parts[2])
    except ValueError:
        raise RequestError(f"item {text[:100]!r}: partition and offset are integers") from None
    if partition < 0 or offset < 0 or partition > 2**31 - 1 or offset > 2**63 - 1:
        raise RequestError(f"item {text[:100]!r}: out of range")
    return parts[0], partition, offset


def parse_request(raw: Mapping[str, Any], clusters: Sequence[str]) -> JobRequest:
    """Validate a request (decoded JSON, or a form turned into the same shape)."""
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RequestError(f"kind must be one of {', '.join(KINDS)}")
    cluster = raw.get("cluster") or (clusters[0] if len(clusters) == 1 else None)
    if not isinstance(cluster, str) or cluster not in clusters:
        raise RequestError("cluster: name one of the configured clusters")
    items_raw = raw.get("items") or []
    if not isinstance(items_raw, list):
        raise RequestError("items must be a list")
    if len(items_raw) > MAX_ITEMS_LISTED:
        raise RequestError(f"items: at most {MAX_ITEMS_LISTED}; select by filter instead")
    items: list[Coordinates] = []
    for item in items_raw:
        if isinstance(item, str):
            items.append(parse_coordinates(item))
        elif isinstance(item, Mapping):
            items.append(parse_coordinates(
                f"{item.get('topic')}/{item.get('partition')}/{item.get('offset')}"
            ))  # fmt: skip
        else:
            raise RequestError("items: each is topic/partition/offset or an object")
    filter_raw = raw.get("filter") or {}
    if not isinstance(filter_raw, Mapping):
        raise RequestError("filter must be an object of event filter fields")
    unknown = sorted(set(filter_raw) - set(FILTER_FIELDS) - {"cluster"})
    if unknown:
        raise RequestError(f"filter: unknown field {unknown[0]!r}")
    filter_args = {
        k: str(v) for k, v in filter_raw.items() if k in FILTER_FIELDS and v not in (None, "")
    }
    if items and filter_args:
        raise RequestError("give either items or a filter, not both")
    if not items and not any(filter_args.get(name) for name in NARROWING_FIELDS):
        raise RequestError("select something: items, or a filter with at least one field")
    target = raw.get("target_topic") or None
    if target is not None and (not isinstance(target, str) or not TOPIC_NAME.fullmatch(target)):
        raise RequestError("target_topic: 1-249 characters of A-Z a-z 0-9 . _ -")
    rate_raw = raw.get("rate")
    rate: float | None = None
    if rate_raw not in (None, ""):
        try:
            rate = float(rate_raw)
        except (TypeError, ValueError):
            raise RequestError("rate: a number of messages per second") from None
        if not 0 < rate <= MAX_RATE:
            raise RequestError(f"rate: between 0 and {MAX_RATE:.0f} messages per second")
    request = JobRequest(
        kind=kind,
        cluster=cluster,
        items=tuple(items),
        filter_args=filter_args,
        target_topic=target,
        options=JobOptions(
            rate=rate,
            dry_run=_flag(raw.get("dry_run")),
            keep_error_headers=_flag(raw.get("keep_error_headers")),
            force=_flag(raw.get("force")),
            include_ended_sagas=_flag(raw.get("include_ended_sagas")),
        ),
    )
    if not items:
        try:
            request.event_filter()
        except SearchError as exc:
            raise RequestError(f"filter: {exc}") from None
    return request
