"""The typed record of one `events` row, as the collectors write it.

`EventRow` lists the columns of the `events` table (collectors/index/models.py, the
storage definition) but the row id, which the database assigns; a test checks that the
two agree column for column. Its field order is the order in which rows travel to the
writer: the cluster and the indexing time, then the fields that the normaliser produces
under the same names (`NormalizedEvent`), then the hashes of the key and of the identity
columns. The INSERT names its columns, so this order need not be the table's.

On the hot path rows are plain tuples in this order (a NamedTuple costs three times as
much to build and six times as much to pickle to the writer process); `EventRow(*row)`
reads one by name, `event_row(...)` builds one by name.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from collectors.index.identity import identity_hashes, search_key, text_hash
from collectors.index.models import IDENTITY_HASH_COLUMNS

EventTuple = tuple[Any, ...]


class EventRow(NamedTuple):
    cluster: str
    indexed_at_ms: int
    # what the normaliser produces (collectors/conventions.NormalizedEvent), same names
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    value_size: int
    value_truncated: bool
    is_tombstone: bool
    headers: str  # JSON: [[name, value], ...] in wire order, duplicates kept
    content_type: str
    schema_id: int | None
    key_schema_id: int | None
    decoded_key: str | None  # JSON
    decoded_value: str | None  # JSON
    decode_state: str | None  # decoded, pending, failed (collectors/schemas/decoding.py)
    decode_note: str | None
    event_id: str | None
    event_type: str | None
    source: str | None
    correlation_id: str | None
    causation_id: str | None
    trace_id: str | None
    span_id: str | None
    saga_id: str | None
    is_dlq: bool
    dlq_original_topic: str | None
    dlq_original_partition: int | None
    dlq_original_offset: int | None
    dlq_error_class: str | None
    dlq_error_message: str | None
    dlq_stacktrace: str | None
    dlq_attempts: int | None
    dlq_format: str | None
    # 64-bit hashes that the look-up indexes hold in place of the text (identity.py)
    key_hash: int | None
    event_id_hash: int | None
    correlation_hash: int | None
    causation_hash: int | None
    trace_hash: int | None
    saga_hash: int | None


EVENT_COLUMNS: tuple[str, ...] = EventRow._fields
COLUMN_INDEX = {name: i for i, name in enumerate(EVENT_COLUMNS)}
# The fields the normaliser fills, in row order (between the indexing time and the hashes).
NORMALIZED_COLUMNS = EVENT_COLUMNS[2 : COLUMN_INDEX["key_hash"]]


def event_row(**columns: Any) -> EventRow:
    """A row by column name, its hashes computed from the key and identity columns
    (columns not given are NULL). For tests, benchmarks and tools, not the hot path."""
    values: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS) | columns
    values["key_hash"] = text_hash(search_key(values["key"], values["decoded_key"]))
    hashes = identity_hashes(*(values[name] for name in IDENTITY_HASH_COLUMNS))
    values.update(zip(IDENTITY_HASH_COLUMNS.values(), hashes, strict=True))
    return EventRow(**values)
