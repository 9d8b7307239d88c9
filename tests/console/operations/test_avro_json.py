"""The JSON the console shows for an Avro record goes back into the same record."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json

import fastavro
import orjson

from collectors.schemas.decoders import json_default
from console.operations.avro_json import datum_from_json
from tests.schema_fixtures import ORDER_AVRO, order

WITH_UNIONS = {
    "type": "record", "name": "Shipment", "fields": [
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "due", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "blob", "type": "bytes"},
        {"name": "weights", "type": {"type": "map", "values": "double"}},
        {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "OUT"]}},
        {"name": "next", "type": ["null", "State"]},
    ],
}  # fmt: skip


def round_trip(schema: dict, datum: dict) -> dict:
    """Write `datum`, show it as the console does, read the JSON back, write it again."""
    parsed = fastavro.parse_schema(schema)
    shown = orjson.loads(orjson.dumps(datum, default=json_default))
    back = datum_from_json(shown, fastavro.parse_schema(json.loads(json.dumps(schema))))
    first, second = io.BytesIO(), io.BytesIO()
    fastavro.schemaless_writer(first, parsed, datum)
    fastavro.schemaless_writer(second, parsed, back)
    assert first.getvalue() == second.getvalue()
    return back


def test_decimals_timestamps_and_nested_records_come_back() -> None:
    back = round_trip(ORDER_AVRO, order("corr-1"))
    assert back["amount"] == decimal.Decimal("79.90")
    assert back["placedAt"] == dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def test_unions_bytes_maps_and_enums_come_back() -> None:
    datum = {"note": "fragile", "due": dt.date(2026, 12, 24), "blob": bytes(range(256)),
             "weights": {"a": 1.5, "b": 2.0}, "state": "OUT", "next": "NEW"}  # fmt: skip
    back = round_trip(WITH_UNIONS, datum)
    assert back["blob"] == bytes(range(256)) and back["due"] == dt.date(2026, 12, 24)


def test_plain_forms_are_read_too() -> None:
    parsed = fastavro.parse_schema(ORDER_AVRO)
    typed = {"amount": 12.5, "placedAt": 1_764_590_400_000}
    back = datum_from_json(typed, parsed)
    assert back == {"amount": decimal.Decimal("12.5"), "placedAt": 1_764_590_400_000}
