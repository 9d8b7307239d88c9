"""Decode OTLP/HTTP trace exports (`POST /v1/traces`) into flat span records.

Pure logic: the HTTP route hands over the raw body and two headers, gets back
`SpanRecord`s or an `OtlpError` carrying the HTTP status to answer, and uses
`encode_response` / `encode_error` to build the body in the request's own format.

Decisions worth knowing:

* Both wire formats are accepted: binary protobuf (`application/x-protobuf`,
  `application/protobuf`) and OTLP/JSON (`application/json`). OTLP/JSON differs from
  the canonical protobuf JSON mapping: ids are hex, enums are integers, 64-bit integers
  are decimal strings (numbers are accepted too), unknown fields are ignored. Field names
  are read in lowerCamelCase as the specification requires; the original snake_case
  names are accepted as a fallback, like any protobuf JSON parser does, because being
  lenient costs nothing here. Ids sent base64-encoded (the canonical protobuf mapping,
  which some exporters emit by mistake) are recognised by their length and accepted.
* The body is limited to `max_bytes` before and after gzip decompression; the
  decompressor never produces more than the limit, so a gzip bomb costs at most that.
* Structural garbage (not protobuf, not JSON, `resourceSpans` not a list...) is a 400.
  A span with a bad trace id, span id, parent span id or timestamp is rejected alone and
  counted, the rest is kept: the answer is then a partial success.
* Attribute values become JSON-safe Python values: str, int, float, bool, None, list,
  dict. Bytes become `{"b64": "<standard base64>"}`. Non-finite doubles become the
  strings "NaN", "Infinity", "-Infinity" as in protobuf JSON. Strings are cut to 4 KiB
  (UTF-8), names to 1 KiB, nesting to `MAX_VALUE_DEPTH` containers, each attribute map to
  `MAX_ATTRIBUTES` keys and `ATTRIBUTE_MAP_BUDGET` bytes; what is cut is counted in the
  record's `dropped_*` fields together with what the sender itself reported dropped.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from typing import Any, Literal

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from collectors.otlp_json import spans_from_json
from collectors.otlp_model import (
    MAX_BODY_BYTES,
    MAX_INT64,
    MAX_STRING_BYTES,
    DecodeResult,
    OtlpError,
    cap_text,
)
from collectors.otlp_protobuf import spans_from_protobuf

PROTOBUF_MEDIA_TYPE = "application/x-protobuf"
JSON_MEDIA_TYPE = "application/json"

WireFormat = Literal["protobuf", "json"]

_MEDIA_TYPES: dict[str, WireFormat] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
# google.rpc.Code values for the HTTP statuses this receiver answers with.
_RPC_CODES = {400: 3, 404: 5, 413: 8, 415: 3, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


# --------------------------------------------------------------------------- entry points


def wire_format(content_type: str | None) -> WireFormat | None:
    """Which OTLP encoding a Content-Type header names, parameters ignored; None if neither."""
    if not content_type:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    return _MEDIA_TYPES.get(media_type)


def decode_traces_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int = MAX_BODY_BYTES,
) -> DecodeResult:
    """Decode an ExportTraceServiceRequest body; raises OtlpError (400, 413, 415)."""
    fmt = wire_format(content_type)
    if fmt is None:
        raise OtlpError(
            415,
            f"unsupported content type {_printable(content_type)}; "
            f"use {PROTOBUF_MEDIA_TYPE} or {JSON_MEDIA_TYPE}",
        )
    payload = _decoded_body(body, content_encoding, max_bytes)
    rejections: Counter[str] = Counter()
    if fmt == "protobuf":
        spans = spans_from_protobuf(payload, rejections)
    else:
        spans = spans_from_json(payload, rejections)
    rejected = sum(rejections.values())
    if not rejected:
        return DecodeResult(spans=spans)
    return DecodeResult(spans=spans, rejected=rejected, error_message=_summary(rejections))


def encode_response(result: DecodeResult, content_type: str | None) -> tuple[bytes, str]:
    """ExportTraceServiceResponse for a 200 answer, in the request's format.

    Returns (body, media type). Protobuf leaves `partial_success` unset on full success;
    JSON answers `{"partialSuccess": {}}` then, which clients read the same way.
    """
    partial = result.rejected > 0 or bool(result.error_message)
    if wire_format(content_type) == "protobuf":
        response = ExportTraceServiceResponse()
        if partial:
            response.partial_success.rejected_spans = max(0, min(result.rejected, MAX_INT64))
            response.partial_success.error_message = result.error_message or ""
        return response.SerializeToString(), PROTOBUF_MEDIA_TYPE
    details: dict[str, str] = {}
    if partial:
        details["rejectedSpans"] = str(max(0, result.rejected))
        details["errorMessage"] = result.error_message or ""
    return _json_bytes({"partialSuccess": details}), JSON_MEDIA_TYPE


def encode_error(status: int, message: str, content_type: str | None) -> tuple[bytes, str]:
    """google.rpc.Status body for a 4xx/5xx answer; JSON when the request format is unknown."""
    code = _RPC_CODES.get(status, 2)  # 2 = UNKNOWN
    message = cap_text(message.encode("utf-8", "replace").decode("utf-8"), MAX_STRING_BYTES)
    if wire_format(content_type) == "protobuf":
        text = message.encode("utf-8")
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
        return body, PROTOBUF_MEDIA_TYPE
    return _json_bytes({"code": code, "message": message}), JSON_MEDIA_TYPE


# --------------------------------------------------------------------------- body


def _decoded_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise OtlpError(413, f"request body larger than {max_bytes} bytes")
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _gunzip_limited(body, max_bytes)
    raise OtlpError(415, f"unsupported content encoding {_printable(content_encoding)}")


def _gunzip_limited(body: bytes, max_bytes: int) -> bytes:
    """Decompress gzip (one or more members) without ever holding more than max_bytes."""
    chunks: list[bytes] = []
    total = 0
    data = body
    try:
        while True:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not inflater.eof:
                piece = inflater.decompress(data, max_bytes + 1 - total)
                total += len(piece)
                if total > max_bytes:
                    raise OtlpError(413, f"decompressed body larger than {max_bytes} bytes")
                chunks.append(piece)
                data = inflater.unconsumed_tail
                if not piece and not data:
                    break
            if not inflater.eof:
                raise OtlpError(400, "truncated gzip body")
            data = inflater.unused_data
            if not data.strip(b"\x00"):
                break
    except zlib.error as exc:
        raise OtlpError(400, f"invalid gzip body: {exc}") from None
    return b"".join(chunks)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def _printable(text: str | None) -> str:
    return repr(cap_text(text or "", 100))


def _summary(rejections: Counter[str]) -> str:
    parts = [f"{count} with {reason}" for reason, count in rejections.most_common()]
    total = sum(rejections.values())
    return f"rejected {total} span{'s' if total != 1 else ''}: " + "; ".join(parts)
