"""Typed JSON back to an Avro datum, for writing records by hand.

The console shows Avro records as JSON (collectors/schemas/decoders.py): decimals as text,
timestamps and dates as ISO 8601, bytes and fixed one character per byte, a union's value
as itself. A person editing that JSON must be able to send it back, so this reads the same
forms (and the plain ones: numbers for decimals, epoch numbers for timestamps) and gives
fastavro the Python values it writes. Pure; anything that does not fit is left as it is
for fastavro's validation to name.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def datum_from_json(document: Any, schema: Any) -> Any:
    """`document` (parsed JSON) as a datum of `schema` (as fastavro.parse_schema gives it)."""
    return _Converter().convert(document, schema)


class _Converter:
    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def convert(self, value: Any, schema: Any) -> Any:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return _primitive(value, schema)
            return self.convert(value, self.named.get(schema, schema))
        if isinstance(schema, list):
            return self._union(value, schema)
        if not isinstance(schema, dict):
            return value
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed") and "name" in schema:
            self.named[schema["name"]] = schema
        logical = schema.get("logicalType")
        if logical:
            return _logical(value, logical, kind)
        if kind in ("record", "error") and isinstance(value, dict):
            fields = {f["name"]: f["type"] for f in schema.get("fields", [])}
            return {k: self.convert(v, fields[k]) if k in fields else v for k, v in value.items()}
        if kind == "array" and isinstance(value, list):
            return [self.convert(item, schema.get("items")) for item in value]
        if kind == "map" and isinstance(value, dict):
            return {k: self.convert(v, schema.get("values")) for k, v in value.items()}
        if kind == "fixed" and isinstance(value, str):
            return _latin1(value)
        if isinstance(kind, str | list | dict) and kind not in ("record", "error", "enum"):
            return self.convert(value, kind)
        return value

    def _union(self, value: Any, branches: list[Any]) -> Any:
        """The value as the first branch its JSON type fits (JSON has no union tags)."""
        if value is None:
            return None
        for branch in branches:
            if self._fits(value, branch):
                return self.convert(value, branch)
        return value

    def _fits(self, value: Any, schema: Any) -> bool:
        resolved = self.named.get(schema, schema) if isinstance(schema, str) else schema
        kind = resolved.get("type") if isinstance(resolved, dict) else resolved
        logical = resolved.get("logicalType") if isinstance(resolved, dict) else None
        if isinstance(kind, dict):  # {"type": {"type": "long", "logicalType": ...}}
            return self._fits(value, kind)
        if isinstance(value, bool):
            return kind == "boolean"
        if isinstance(value, int):
            return kind in ("int", "long", "float", "double") or logical == "decimal"
        if isinstance(value, float):
            return kind in ("float", "double") or logical == "decimal"
        if isinstance(value, str):
            if kind == "enum":
                return value in resolved.get("symbols", [])
            return kind in ("string", "bytes", "fixed") or logical is not None
        if isinstance(value, dict):
            if kind == "map":
                return True
            names = {f["name"] for f in resolved.get("fields", [])} if kind == "record" else None
            return names is not None and set(value) <= names
        if isinstance(value, list):
            return kind == "array"
        return False


def _primitive(value: Any, kind: str) -> Any:
    if kind == "bytes" and isinstance(value, str):
        return _latin1(value)
    if kind in ("float", "double") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _latin1(text: str) -> Any:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text  # not one character per byte: fastavro says so


def _logical(value: Any, logical: str, kind: Any) -> Any:
    try:
        if logical == "decimal" and isinstance(value, str | int | float):
            return decimal.Decimal(str(value))
        if "timestamp" in logical and isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None and not logical.startswith("local"):
                moment = moment.replace(tzinfo=dt.UTC)
            return moment
        if logical == "date" and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if logical.startswith("time-") and isinstance(value, str):
            return dt.time.fromisoformat(value)
    except (ValueError, decimal.InvalidOperation):
        return value
    if kind == "fixed" or kind == "bytes":
        return _latin1(value) if isinstance(value, str) else value
    return value
