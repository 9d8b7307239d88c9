"""The headers a redriven or replayed record carries: the source's, minus dead-letter error
headers (unless kept), plus eventscope's provenance headers.

Provenance lets anyone (and the crash recovery of the runner) tell which job sent a record
and from where: `eventscope-action-id`, `eventscope-source-{cluster,topic,partition,offset}`
and, for redrives, `eventscope-redrive-count` (one more than the count the dead-lettered
record carried, so a message that fails again shows how often it went round).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from collectors.conventions import Conventions

ACTION_ID = "eventscope-action-id"
SOURCE_CLUSTER = "eventscope-source-cluster"
SOURCE_TOPIC = "eventscope-source-topic"
SOURCE_PARTITION = "eventscope-source-partition"
SOURCE_OFFSET = "eventscope-source-offset"
REDRIVE_COUNT = "eventscope-redrive-count"
PROVENANCE = (ACTION_ID, SOURCE_CLUSTER, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)

# Whole families of dead-letter and retry headers, whatever the conventions list.
ERROR_HEADER_PREFIXES = ("kafka_dlt-", "__connect.errors.", "retry_topic-")

Header = tuple[str, bytes | None]


def error_header_names(conventions: Conventions) -> frozenset[str]:
    """Lower-case names of the dead-letter headers the conventions recognize."""
    names: set[str] = {"kafka_deliveryattempt"}
    for column in (
        "original_topic", "original_partition", "original_offset", "error_class",
        "error_message", "stacktrace", "attempts",
    ):  # fmt: skip
        names.update(name.lower() for name in getattr(conventions, f"dlq_{column}_headers"))
    return frozenset(names)


def is_error_header(name: str, error_names: frozenset[str]) -> bool:
    lowered = name.lower()
    return lowered in error_names or lowered.startswith(ERROR_HEADER_PREFIXES)


def redrive_count(headers: Iterable[Header]) -> int:
    """The redrive count a record carries (0 when it was never redriven by eventscope)."""
    count = 0
    for name, value in headers:
        if name.lower() == REDRIVE_COUNT and value is not None:
            try:
                count = int(value.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                continue
    return max(count, 0)


@dataclass(frozen=True)
class Provenance:
    action_id: str
    cluster: str
    topic: str
    partition: int
    offset: int


def outgoing_headers(
    headers: Sequence[Header],
    provenance: Provenance,
    *,
    redrive: bool,
    drop_error_headers: bool,
    error_names: frozenset[str],
) -> list[Header]:
    """The headers to send: order kept, old provenance replaced, error headers dropped."""
    count = redrive_count(headers)
    kept: list[Header] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in PROVENANCE or lowered == REDRIVE_COUNT:
            continue
        if drop_error_headers and is_error_header(name, error_names):
            continue
        kept.append((name, value))
    kept += [
        (ACTION_ID, provenance.action_id.encode()),
        (SOURCE_CLUSTER, provenance.cluster.encode()),
        (SOURCE_TOPIC, provenance.topic.encode()),
        (SOURCE_PARTITION, str(provenance.partition).encode()),
        (SOURCE_OFFSET, str(provenance.offset).encode()),
    ]
    if redrive:
        kept.append((REDRIVE_COUNT, str(count + 1).encode()))
    elif count:
        kept.append((REDRIVE_COUNT, str(count).encode()))
    return kept


def provenance_of(headers: Iterable[Header]) -> Provenance | None:
    """The provenance a record carries (the last value of each header), or None."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name in PROVENANCE and value is not None:
            try:
                found[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                return None
    if len(found) != len(PROVENANCE):
        return None
    try:
        return Provenance(
            found[ACTION_ID], found[SOURCE_CLUSTER], found[SOURCE_TOPIC],
            int(found[SOURCE_PARTITION]), int(found[SOURCE_OFFSET]),
        )  # fmt: skip
    except ValueError:
        return None
