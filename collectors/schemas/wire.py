"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the body.

Protobuf bodies start with the message indexes that name the message type inside the
schema's file: a zigzag varint count, then that many zigzag varint indexes (the first
top-level message, the most common case, is the single byte 0). Pure functions; every
malformed frame raises `FrameError` with a sentence a person can read.
"""

from __future__ import annotations

from typing import NamedTuple

MAGIC_BYTE = 0
HEADER_SIZE = 5
MAX_MESSAGE_DEPTH = 64  # nesting deeper than this is not a real schema
_MAX_VARINT_BYTES = 10


class FrameError(ValueError):
    """Bytes that are not a well-formed frame (the record is wrong, not the registry)."""


class Frame(NamedTuple):
    schema_id: int
    body_start: int  # index of the first body byte in the value


def is_framed(value: bytes | None) -> bool:
    """True when the value starts like a registry frame (magic byte 0)."""
    return bool(value) and value[0] == MAGIC_BYTE  # type: ignore[index]


def read_frame(value: bytes) -> Frame:
    """The schema id of a value that starts with the magic byte."""
    if not value or value[0] != MAGIC_BYTE:
        first = f"0x{value[0]:02x}" if value else "nothing"
        raise FrameError(f"wrong magic byte: {first}, the registry's wire format starts with 0x00")
    if len(value) < HEADER_SIZE:
        raise FrameError(
            f"truncated frame: {len(value)} bytes, the wire format needs {HEADER_SIZE} "
            "(magic byte and 4-byte schema id)"
        )
    return Frame(int.from_bytes(value[1:HEADER_SIZE], "big"), HEADER_SIZE)


def _zigzag_varint(data: bytes, position: int) -> tuple[int, int]:
    shift = result = 0
    for _ in range(_MAX_VARINT_BYTES):
        if position >= len(data):
            raise FrameError("truncated Protobuf message indexes")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
    raise FrameError("malformed Protobuf message indexes: a varint longer than 10 bytes")


def read_message_indexes(data: bytes, position: int) -> tuple[tuple[int, ...], int]:
    """The Protobuf message indexes at `position` and the index of the first message byte."""
    if position < len(data) and data[position] == 0:  # the first message: most records
        return (0,), position + 1
    count, position = _zigzag_varint(data, position)
    if count == 0:
        return (0,), position
    if count < 0 or count > MAX_MESSAGE_DEPTH:
        raise FrameError(f"malformed Protobuf message indexes: count {count}")
    indexes = []
    for _ in range(count):
        index, position = _zigzag_varint(data, position)
        if index < 0:
            raise FrameError(f"malformed Protobuf message indexes: index {index}")
        indexes.append(index)
    return tuple(indexes), position


def message_indexes_bytes(indexes: tuple[int, ...]) -> bytes:
    """The wire form of message indexes (the inverse of `read_message_indexes`)."""
    if indexes == (0,):
        return b"\x00"
    out = bytearray()
    for number in (len(indexes), *indexes):
        zigzag = (number << 1) ^ (number >> 63)
        while True:
            byte = zigzag & 0x7F
            zigzag >>= 7
            if zigzag:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                break
    return bytes(out)


def frame(schema_id: int, body: bytes, indexes: tuple[int, ...] | None = None) -> bytes:
    """A framed value: header, Protobuf message indexes when given, body."""
    prefix = bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")
    return prefix + (message_indexes_bytes(indexes) if indexes is not None else b"") + body
