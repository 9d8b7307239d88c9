from __future__ import annotations

import pytest

from collectors.schemas.wire import (
    FrameError,
    frame,
    message_indexes_bytes,
    read_frame,
    read_message_indexes,
)


def test_frame_header_gives_the_schema_id() -> None:
    value = frame(1042, b"body")
    assert value[:5] == b"\x00\x00\x00\x04\x12"
    assert read_frame(value) == (1042, 5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x01\x00\x00\x00\x01x", "wrong magic byte: 0x01"),
        (b"", "wrong magic byte: nothing"),
        (b"\x00\x00\x01", "truncated frame: 3 bytes, the wire format needs 5"),
    ],
)
def test_malformed_frames_say_what_is_wrong(value: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        read_frame(value)


@pytest.mark.parametrize(
    ("indexes", "wire"),
    [
        ((0,), b"\x00"),  # the first message: one byte, as the serializers write it
        ((1,), b"\x02\x02"),
        ((1, 0), b"\x04\x02\x00"),
        ((1, 0, 0), b"\x06\x02\x00\x00"),
        ((300,), b"\x02\xd8\x04"),  # a two-byte varint
    ],
)
def test_protobuf_message_indexes_round_trip(indexes: tuple[int, ...], wire: bytes) -> None:
    assert message_indexes_bytes(indexes) == wire
    assert read_message_indexes(b"\x00" * 5 + wire + b"rest", 5) == (indexes, 5 + len(wire))


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"\x04\x02", "truncated"),  # says two indexes, holds one
        (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "longer than 10 bytes"),
        (b"\x01", "count -1"),  # zigzag 1 is -1
        (b"\x02\x01", "index -1"),
        (b"\xfe\x01", "count 127"),
    ],
)
def test_malformed_message_indexes(wire: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        read_message_indexes(wire, 0)
