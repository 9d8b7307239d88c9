import json

from console.payload_view import (
    bytes_for_json,
    display_key,
    header_rows,
    hex_dump,
    payload_view,
    visible,
)


def test_direction_overrides_and_control_characters_are_shown_not_obeyed() -> None:
    assert visible("\u202egnp.exe") == "\\u202egnp.exe"
    assert visible("a\x07b\tc") == "a\\x07b\tc"


def test_bytes_for_json_is_lossless() -> None:
    assert bytes_for_json(b"plain") == {"text": "plain", "size": 5}
    assert bytes_for_json(b"\xff\x00") == {"b64": "/wA=", "size": 2}
    assert bytes_for_json(None) is None


def test_keys_display_as_text_or_hex() -> None:
    assert display_key(b"order-1") == "order-1"
    assert display_key(b"\xff\x01") == "0xff01"
    assert display_key(None) == "null"
    assert display_key(b"k" * 500).endswith("…")


def test_header_rows_keep_order_duplicates_and_mark_binary_and_truncation() -> None:
    stored = json.dumps(
        [
            ["dup", "1"],
            ["dup", "2"],
            ["bin", {"b64": "AAAAKg=="}],
            ["nothing", None],
            ["big", {"text": "hhh", "truncated": True, "size": 1_000_000}],
        ]
    )
    rows = header_rows(stored)
    assert [(r.name, r.value) for r in rows[:2]] == [("dup", "1"), ("dup", "2")]
    assert rows[2].encoding == "base64" and "int 42" in rows[2].value
    assert rows[3].encoding == "null"
    assert rows[4].truncated and rows[4].size == 1_000_000
    assert header_rows("not json")[0].encoding == "note"


def test_payload_views() -> None:
    json_view = payload_view(b'{"a": [1, true, "x"]}')
    assert json_view.kind == "json"
    assert ("j-key", '"a"') in (json_view.tokens or [])
    assert payload_view(b"hello").kind == "text"
    assert payload_view(b"\x00\x01\x02").kind == "hex"
    assert payload_view(None).kind == "empty"
    assert payload_view(b'{"deep": ' * 5000).kind in ("text", "hex")


def test_hex_dump_lines_and_cap() -> None:
    lines = hex_dump(bytes(range(40)), cap=32)
    assert len(lines) == 2
    assert lines[0][0] == "00000000" and lines[0][1].startswith("00 01 02")
    assert lines[1][2] == "................"


def test_a_payload_shown_in_part_says_so_whatever_its_kind() -> None:
    """Text (and JSON too big to format, shown as text) is cut at 256 KiB like hex at
    16 KiB: the page must say how much of the value it shows."""
    from console.templating import human_bytes, make_templates

    template = make_templates().env.get_template("_payload.html")
    big_json = b'{"items": [' + b'"abcdefgh",' * 40_000 + b'"end"]}'
    for value, kind in ((big_json, "text"), (b"\x00" * 20_000, "hex"), (b'{"a": 1}', "json")):
        event = {"value_size": len(value), "value_truncated": False, "is_tombstone": False,
                 "value_withheld": False}  # fmt: skip
        view = payload_view(value)
        html = template.render(event=event, payload=view, decoded=None, schemas=[])
        assert view.kind == kind
        if kind == "json":
            assert 'id="payload-cut"' not in html
        else:
            assert "payload-cut" in html and f"of {human_bytes(len(value))} shown" in html
