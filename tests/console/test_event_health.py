"""The pure part of event health: settings, reading a sequence, comparing, copy kinds."""

from __future__ import annotations

import json

import pytest

from console.event_health import (
    EventHealthConfigError,
    SequencedRecord,
    compare,
    copy_kind,
    event_health_settings,
    parse_field,
    read_sequence,
    sequence_breaks,
    sequence_value,
)


def test_settings_default_and_parsed() -> None:
    assert event_health_settings({}).sequences == ()
    settings = event_health_settings({
        "max_rows": 500,
        "sequences": [
            {"topic": "shop.orders", "field": "$.version"},
            {"topic": "pay*", "field": "header:X-Seq", "gaps": True},
            {"topic": "*", "field": "ce:sequence"},
        ],
    })  # fmt: skip
    assert settings.max_rows == 500
    assert settings.sequence_for("shop.orders").field.path == ("version",)  # type: ignore[union-attr]
    payments = settings.sequence_for("payments")
    assert payments is not None and payments.gaps and payments.field.name == "x-seq"
    assert settings.sequence_for("other").field.kind == "cloudevents"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"colour": 1}, "colour"),
        ({"max_rows": "many"}, "max_rows"),
        ({"max_rows": 10}, "max_rows"),
        ({"sequences": {}}, "sequences"),
        ({"sequences": [{"field": "$.v"}]}, "sequences[0].topic"),
        ({"sequences": [{"topic": "t"}]}, "sequences[0].field"),
        ({"sequences": [{"topic": "t", "field": "version"}]}, "sequences[0].field"),
        ({"sequences": [{"topic": "t", "field": "$.a..b"}]}, "sequences[0].field"),
        ({"sequences": [{"topic": "t", "field": "ce:Bad Name"}]}, "sequences[0].field"),
        ({"sequences": [{"topic": "t", "field": "$.v", "gaps": "yes"}]}, "sequences[0].gaps"),
        ({"sequences": [{"topic": "t", "field": "$.v", "x": 1}]}, "sequences[0].x"),
    ],
)
def test_bad_settings_name_their_key(data: dict, key: str) -> None:
    with pytest.raises(EventHealthConfigError) as error:
        event_health_settings(data)
    assert error.value.key == key


def test_settings_errors_reach_the_loader() -> None:
    from collectors.config import ConfigError
    from console.settings import settings_from_mapping

    with pytest.raises(ConfigError, match=r"event_health\.sequences\[0\]\.field"):
        settings_from_mapping({"event_health": {"sequences": [{"topic": "t", "field": "v"}]}})


def test_sequence_values() -> None:
    assert sequence_value(7) == 7 and sequence_value("12") == 12 and sequence_value(3.0) == 3
    assert sequence_value("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    for unusable in (None, True, 1.5, {"a": 1}, [1], "", "x" * 65):
        assert sequence_value(unusable) is None


def test_read_sequence_from_json_header_and_cloudevents() -> None:
    headers = json.dumps([["X-Seq", "5"], ["ce_sequence", {"b64": "OQ=="}]])
    nested = b'{"meta": {"version": 3}}'
    assert read_sequence(parse_field("$.meta.version"), nested, None, "[]") == 3
    assert read_sequence(parse_field("$.version"), b"not json", None, "[]") is None
    assert read_sequence(parse_field("$.version"), None, '{"version": "4"}', "[]") == 4
    assert read_sequence(parse_field("header:x-seq"), None, None, headers) == 5
    assert read_sequence(parse_field("ce:sequence"), None, None, headers) == 9
    structured = json.dumps([["content-type", "application/cloudevents+json"]])
    doc = b'{"id": "1", "sequence": "11", "data": {}}'
    assert read_sequence(parse_field("ce:sequence"), doc, None, structured) == 11
    assert read_sequence(parse_field("ce:sequence"), doc, None, "[]") is None
    assert read_sequence(parse_field("header:x-seq"), None, None, "{broken") is None


def test_compare() -> None:
    assert compare(2, 1, False) == "backwards"
    assert compare(1, 1, False) is None  # a repeat: the duplicates check reports it
    assert compare(1, 3, False) is None and compare(1, 3, True) == "gap"
    assert compare("b", "a", False) == "backwards"
    assert compare(1, "a", True) is None  # not comparable


def _record(partition: int, offset: int, key: bytes, sequence: int) -> SequencedRecord:
    return SequencedRecord(partition, offset, key, sequence, 1000 + offset)


def test_breaks_walk_each_partition_and_key_in_offset_order() -> None:
    records = [
        _record(0, 3, b"a", 2),  # given out of order: sorted by offset
        _record(0, 1, b"a", 1),
        _record(0, 2, b"b", 7),
        _record(0, 4, b"a", 3),
        _record(0, 5, b"a", 2),  # backwards from 3
        _record(0, 6, b"a", 4),  # compared with the high mark 3: in order
        _record(1, 0, b"a", 1),  # another partition: its own sequence
    ]
    [found] = sequence_breaks(records, gaps=False)
    seen = (found.kind, found.key, found.before_offset, found.before, found.offset, found.after)
    assert seen == ("backwards", b"a", 4, 3, 5, 2)
    gaps = sequence_breaks([_record(0, 0, b"k", 1), _record(0, 1, b"k", 4)], gaps=True)
    assert [g.kind for g in gaps] == ["gap"]


def test_copy_kinds() -> None:
    assert copy_kind("orders", False, None) == "plain"
    assert copy_kind("orders", True, None) == "dead-letter"
    assert copy_kind("orders", False, 2) == "retry"
    assert copy_kind("orders-retry-1000", False, None) == "retry"
    assert copy_kind("orders-retry", False, None) == "retry"
    assert copy_kind("retry-orders", False, None) == "plain"
