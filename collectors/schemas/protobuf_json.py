"""Protobuf messages as JSON-like Python values, fast enough for the tap.

The protobuf runtime's own `MessageToDict` walks the descriptors for every message it
prints (26 us for a five-field message with a nested one); here each message type gets a
plan once (its fields, how to read and convert each) and a record then costs a few
attribute reads (docs/benchmarks.md). The output is the canonical proto3 JSON mapping, as
`MessageToDict` gives it: lowerCamelCase field names (so `$.metadata.correlationId` finds
a `correlation_id` field, as for JSON events), fields without presence printed even when
default, 64-bit integers as numbers; a test holds the two equal.
"""

from __future__ import annotations

import base64
import math
import struct
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

Convert = Callable[[Any], Any]

_WRAPPERS = {
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String",
                 "Bytes")
}  # fmt: skip
_AS_JSON_STRING = {"google.protobuf.Duration", "google.protobuf.FieldMask"}
_GENERIC = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
            "google.protobuf.Any", "google.protobuf.Empty"}  # fmt: skip


def message_converter(descriptor: Descriptor) -> Convert:
    """A function from a message of this type to its JSON-like value."""
    return _Plans().message(descriptor)


class _Plans:
    """Converters by message type, built once each (recursive types refer to themselves)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Convert] = {}

    def message(self, descriptor: Descriptor) -> Convert:
        name = descriptor.full_name
        found = self._by_name.get(name)
        if found is not None:
            return found
        if name == "google.protobuf.Timestamp":
            convert: Convert = _timestamp
        elif name in _AS_JSON_STRING:
            convert = _json_string
        elif name in _WRAPPERS:
            convert = self._wrapper(descriptor)
        elif name in _GENERIC:
            convert = _generic
        else:
            convert = self._plain_message(descriptor)
        self._by_name[name] = convert
        return convert

    def _plain_message(self, descriptor: Descriptor) -> Convert:
        """Every field read by name: a few attribute reads beat `ListFields` (which builds
        a descriptor object per set field) by half."""
        plan: list[tuple[str, str, bool, Convert | None]] = []

        def convert_message(message: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for field_name, json_name, presence, field_convert in plan:
                if presence and not message.HasField(field_name):
                    continue
                value = getattr(message, field_name)
                out[json_name] = value if field_convert is None else field_convert(value)
            return out

        self._by_name[descriptor.full_name] = convert_message  # a field may be this type
        for field in descriptor.fields:
            presence = field.has_presence and not field.is_repeated
            plan.append((field.name, field.json_name, presence, self._field(field)))
        return convert_message

    def _field(self, field: FieldDescriptor) -> Convert | None:
        if field.is_repeated and field.message_type is not None and _is_map(field):
            entry = field.message_type
            key_convert = self._single(entry.fields_by_name["key"])
            value_convert = self._single(entry.fields_by_name["value"])

            def convert_map(value: Any) -> dict[str, Any]:
                return {
                    _map_key(k if key_convert is None else key_convert(k)):
                    (v if value_convert is None else value_convert(v))
                    for k, v in value.items()
                }  # fmt: skip

            return convert_map
        single = self._single(field)
        if field.is_repeated:
            if single is None:
                return list
            return lambda values: [single(v) for v in values]
        return single

    def _single(self, field: FieldDescriptor) -> Convert | None:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE or kind == FieldDescriptor.TYPE_GROUP:
            return self.message(field.message_type)
        if kind == FieldDescriptor.TYPE_ENUM:
            names = {v.number: v.name for v in field.enum_type.values}
            return lambda number: names.get(number, number)
        if kind == FieldDescriptor.TYPE_BYTES:
            return _base64
        if kind == FieldDescriptor.TYPE_FLOAT:
            return _float32
        if kind == FieldDescriptor.TYPE_DOUBLE:
            return _double
        return None  # strings, booleans and integers are JSON as they are

    def _wrapper(self, descriptor: Descriptor) -> Convert:
        inner = self._single(descriptor.fields_by_name["value"])
        if inner is None:
            return lambda message: message.value
        return lambda message: inner(message.value)


def _is_map(field: FieldDescriptor) -> bool:
    return bool(field.message_type.GetOptions().map_entry)


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _json_string(message: Any) -> str:
    return str(message.ToJsonString())


def _timestamp(message: Any) -> str:
    """RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits (the JSON mapping's form),
    twice as fast as the runtime's `ToJsonString`."""
    seconds, nanos = message.seconds, message.nanos
    try:
        t = time.gmtime(seconds)
    except (OverflowError, OSError, ValueError):
        return _json_string(message)
    if not 0 <= nanos < 1_000_000_000 or not 1000 <= t.tm_year <= 9999:
        return _json_string(message)  # (strftime pads no year below 1000)
    if nanos == 0:
        fraction = ""
    elif nanos % 1_000_000 == 0:
        fraction = f".{nanos // 1_000_000:03d}"
    elif nanos % 1_000 == 0:
        fraction = f".{nanos // 1_000:06d}"
    else:
        fraction = f".{nanos:09d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + fraction + "Z"


def _generic(message: Message) -> Any:
    return MessageToDict(message)


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _float32(value: float) -> float | str:
    """The shortest decimal that reads back as the same 32-bit float (9.99, not
    9.989999771118164), as the JSON mapping prints it."""
    if not math.isfinite(value):
        return _double(value)
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        shortest = float(f"{value:.{digits}g}")
        if struct.pack("<f", shortest) == packed:
            return shortest
    return value
