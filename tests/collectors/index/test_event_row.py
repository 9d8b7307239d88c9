"""The typed event row and the table agree, and the tap's tuples follow it by name."""

from __future__ import annotations

import dataclasses
import typing

from collectors.conventions import NormalizedEvent
from collectors.index.event_row import EVENT_COLUMNS, NORMALIZED_COLUMNS, EventRow, event_row
from collectors.index.identity import identity_hashes, text_hash
from collectors.index.models import Event, events_table
from collectors.kafka.tap import to_row


def test_the_row_has_every_column_of_the_table_but_the_id_with_its_type() -> None:
    assert sorted(EVENT_COLUMNS) == sorted(c.name for c in events_table.c if c.name != "id")
    model_types = typing.get_type_hints(Event)
    for name, declared in typing.get_type_hints(EventRow).items():
        assert declared == model_types[name], name


def test_the_normaliser_fills_the_middle_of_the_row_under_the_same_names() -> None:
    produced = [f.name for f in dataclasses.fields(NormalizedEvent) if f.name != "trace_sampled"]
    assert produced == list(NORMALIZED_COLUMNS)


def test_the_taps_tuple_is_the_row_by_name() -> None:
    # A distinct value per field: a column out of place shows as a mismatch.
    values = {f.name: f"v-{f.name}" for f in dataclasses.fields(NormalizedEvent)}
    event = NormalizedEvent(**values)  # type: ignore[arg-type]
    row = EventRow(*to_row("c", event, 42))
    assert row.cluster == "c" and row.indexed_at_ms == 42
    for name in NORMALIZED_COLUMNS:
        assert getattr(row, name) == values[name], name
    assert row.key_hash == text_hash("v-key")
    hashes = identity_hashes("v-event_id", "v-correlation_id", "v-causation_id", "v-trace_id",
                             "v-saga_id")  # fmt: skip
    assert (row.event_id_hash, row.correlation_hash, row.causation_hash, row.trace_hash,
            row.saga_hash) == hashes  # fmt: skip


def test_a_row_by_name_gets_its_hashes_and_nulls() -> None:
    row = event_row(cluster="c", topic="t", key=b"k", correlation_id="order-1")
    assert row.key_hash == text_hash(b"k")
    assert row.correlation_hash == text_hash("order-1")
    assert row.event_id is None and row.event_id_hash is None
