"""Turning stored bytes into something a person can read, safely.

Everything here returns plain data (strings, token lists); templates escape it. Nothing
is ever evaluated, and every view is capped so that a hostile 1 MiB payload cannot make a
page huge.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PRETTY_CAP = 256 * 1024
HEX_CAP = 16 * 1024
TEXT_CAP = 256 * 1024

# Bidirectional overrides and isolates can make text display differently from its bytes.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def visible(text: str) -> str:
    """Show invisible and direction-changing characters instead of obeying them."""
    text = BIDI_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return "".join(
        f"\\x{ord(ch):02x}" if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" else ch
        for ch in text
    )


def bytes_as_text(raw: bytes | None) -> str | None:
    """The bytes as text when they are valid UTF-8, else None."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def bytes_for_json(raw: bytes | None) -> dict[str, Any] | None:
    """API form of a byte string: text when UTF-8, base64 otherwise (never lossy)."""
    if raw is None:
        return None
    text = bytes_as_text(raw)
    if text is not None:
        return {"text": text, "size": len(raw)}
    return {"b64": base64.b64encode(raw).decode(), "size": len(raw)}


def display_key(raw: bytes | None, decoded: str | None = None, cap: int = 200) -> str:
    """A key for a table cell: its decoded form when a schema decoded it (a string without
    its quotes), else its text, else its bytes in hex."""
    if decoded is not None:
        try:
            value = json.loads(decoded)
        except ValueError:
            value = decoded
        shown = visible(value if isinstance(value, str) else decoded)
        return shown if len(shown) <= cap else shown[:cap] + "…"
    if raw is None:
        return "null"
    text = bytes_as_text(raw)
    shown = visible(text) if text is not None else "0x" + raw[: cap // 2].hex()
    return shown if len(shown) <= cap else shown[:cap] + "…"


@dataclass(frozen=True)
class HeaderRow:
    name: str
    value: str
    encoding: str  # "text", "base64", "null", "note"
    truncated: bool = False
    size: int | None = None


def header_rows(headers_json: str) -> list[HeaderRow]:
    """The stored headers (order and duplicates kept) ready for a table."""
    try:
        entries = json.loads(headers_json)
    except ValueError:
        return [HeaderRow("(unreadable)", headers_json[:200], "note")]
    rows: list[HeaderRow] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, list) or len(entry) != 2:
            continue
        name, value = entry
        name = visible(str(name))
        if value is None:
            rows.append(HeaderRow(name, "null", "null"))
        elif isinstance(value, str):
            rows.append(HeaderRow(name, visible(value), "text"))
        elif isinstance(value, dict):
            truncated = bool(value.get("truncated"))
            size = value.get("size") if isinstance(value.get("size"), int) else None
            if "text" in value:
                rows.append(HeaderRow(name, visible(str(value["text"])), "text", truncated, size))
            else:
                raw = str(value.get("b64", ""))
                rows.append(HeaderRow(name, _b64_preview(raw), "base64", truncated, size))
    return rows


def _b64_preview(b64: str) -> str:
    try:
        raw = base64.b64decode(b64)
    except ValueError:
        return b64[:200]
    if len(raw) in (4, 8):
        return f"0x{raw.hex()} (int {int.from_bytes(raw, 'big', signed=True)})"
    return "0x" + raw[:256].hex() + ("…" if len(raw) > 256 else "")


def headers_for_json(headers_json: str) -> list[Any]:
    try:
        parsed = json.loads(headers_json)
    except ValueError:
        return []
    return parsed if isinstance(parsed, list) else []


# --- payload ---------------------------------------------------------------------------

Token = tuple[str, str]  # (css class, text)
JSON_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))|(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<literal>true|false|null)"
    r"|(?P<punct>[{}\[\],:])|(?P<space>\s+)"
)


def json_tokens(value: bytes) -> list[Token] | None:
    """Pretty-printed JSON as highlighted tokens, or None when the bytes are not JSON."""
    if len(value) > PRETTY_CAP:
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    try:
        pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None
    tokens: list[Token] = []
    position = 0
    for match in JSON_TOKEN.finditer(pretty):
        if match.start() != position:
            tokens.append(("", pretty[position : match.start()]))
        kind = match.lastgroup or ""
        text = match.group()
        if kind in ("key", "string"):
            text = visible(text)
        tokens.append(("" if kind in ("space", "punct") else f"j-{kind}", text))
        position = match.end()
    if position < len(pretty):
        tokens.append(("", pretty[position:]))
    return tokens


def hex_dump(value: bytes, cap: int = HEX_CAP) -> list[tuple[str, str, str]]:
    """(offset, hex bytes, printable ASCII) per 16-byte line, up to `cap` bytes."""
    lines = []
    for start in range(0, min(len(value), cap), 16):
        chunk = value[start : start + 16]
        hex_part = " ".join(f"{b:02x}" for b in chunk)
        ascii_part = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append((f"{start:08x}", hex_part, ascii_part))
    return lines


@dataclass(frozen=True)
class PayloadView:
    kind: str  # "json", "text", "hex", "empty"
    tokens: list[Token] | None = None
    text: str | None = None
    hex_lines: list[tuple[str, str, str]] | None = None
    shown_bytes: int = 0


def payload_view(value: bytes | None) -> PayloadView:
    if value is None or len(value) == 0:
        return PayloadView("empty")
    tokens = json_tokens(value)
    if tokens is not None:
        return PayloadView("json", tokens=tokens, shown_bytes=len(value))
    text = bytes_as_text(value[:TEXT_CAP]) if b"\x00" not in value[:TEXT_CAP] else None
    if text is not None:
        return PayloadView("text", text=visible(text), shown_bytes=min(len(value), TEXT_CAP))
    return PayloadView("hex", hex_lines=hex_dump(value), shown_bytes=min(len(value), HEX_CAP))


# --- decoded records -------------------------------------------------------------------


def parsed_json(text: str | None) -> Any:
    """A decoded value or key (stored as JSON text) as data; None when there is none."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class DecodedView:
    """What a schema made of a record: its state, why not when it failed, and the decoded
    value as highlighted JSON."""

    state: str  # decoded, pending, failed
    note: str | None
    tokens: list[Token] | None
    decoded_bytes: int
    value_withheld: bool


def decoded_view(row: Mapping[str, Any]) -> DecodedView | None:
    state = row.get("decode_state")
    if state is None:
        return None
    decoded = row.get("decoded_value")
    tokens = json_tokens(decoded.encode("utf-8")) if decoded else None
    return DecodedView(
        state=str(state),
        note=row.get("decode_note"),
        tokens=tokens,
        decoded_bytes=len(decoded or ""),
        value_withheld=bool(row.get("value_withheld")),
    )
