"""Standard Webhooks signatures for outgoing notifications, and their verification.

Each delivery carries ``webhook-id`` (the same on every retry, so receivers can drop
duplicates), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``: a space-separated
list of ``v1,<base64 HMAC-SHA256>`` entries over ``"{id}.{timestamp}.{raw body}"``. The
secret is shown to users as ``whsec_<base64>``; the HMAC key is the decoded bytes. Several
entries appear while a secret is being rotated; a receiver accepts any one that matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum

SECRET_PREFIX = "whsec_"  # noqa: S105 - the display prefix, not a secret
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

_TIMESTAMP = re.compile(r"[0-9]{1,15}")


class SignatureReason(StrEnum):
    """Why a delivery was refused, for logs and for tests."""

    MISSING_HEADER = "missing header"
    INVALID_TIMESTAMP = "invalid timestamp"
    TIMESTAMP_TOO_OLD = "timestamp too old"
    TIMESTAMP_TOO_NEW = "timestamp too new"
    NO_MATCHING_SIGNATURE = "no matching signature"


class SignatureError(ValueError):
    """A delivery failed verification; ``reason`` says which check refused it."""

    def __init__(self, reason: SignatureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def generate_secret() -> str:
    """Return a new random endpoint secret in the ``whsec_<base64>`` form shown to users."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """Return the HMAC key of a secret, given with or without the ``whsec_`` prefix.

    Surrounding whitespace and missing base64 padding are forgiven (both happen when a
    secret is pasted); anything else that is not standard base64 raises ValueError.
    """
    if not isinstance(secret, str):
        raise ValueError("webhook secret must be a string")
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    if not encoded:
        raise ValueError("webhook secret is empty")
    if not encoded.isascii():
        raise ValueError("webhook secret is not valid base64 (non-ASCII characters)")
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "webhook secret is not valid base64: expected 'whsec_' followed by base64 text"
        ) from None
    if not key:
        raise ValueError("webhook secret decodes to an empty key")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``v1,<base64>`` signature of one delivery."""
    return _signature(secret_key(secret), msg_id, str(int(timestamp)), body)


def signature_headers(
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    extra_secrets: Sequence[str] = (),
) -> dict[str, str]:
    """Return the three Standard Webhooks headers for a delivery.

    ``extra_secrets`` adds one signature per secret (space separated) so that receivers
    holding either the old or the new secret accept deliveries during a rotation.
    """
    stamp = str(int(timestamp))
    signatures = [
        _signature(secret_key(each), msg_id, stamp, body) for each in (secret, *extra_secrets)
    ]
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: stamp,
        HEADER_SIGNATURE: " ".join(signatures),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: int | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a delivery's headers against its raw body; return quietly when it is genuine.

    Raises SignatureError when a header is missing, the timestamp is unreadable or more than
    ``tolerance_s`` away from ``now`` (either way), or no ``v1`` entry matches. Entries with
    other versions are ignored. Header names are matched case-insensitively. A malformed
    secret raises plain ValueError: that is a configuration problem, not a bad delivery.
    """
    key = secret_key(secret)
    msg_id = _header(headers, HEADER_ID)
    stamp = _header(headers, HEADER_TIMESTAMP)
    presented = _header(headers, HEADER_SIGNATURE)

    if not _TIMESTAMP.fullmatch(stamp):
        raise SignatureError(
            SignatureReason.INVALID_TIMESTAMP, f"{HEADER_TIMESTAMP} is not a number"
        )
    sent_at = int(stamp)
    current = int(time.time()) if now is None else int(now)
    tolerance = max(0, int(tolerance_s))
    if sent_at < current - tolerance:
        raise SignatureError(SignatureReason.TIMESTAMP_TOO_OLD, f"signed {current - sent_at} s ago")
    if sent_at > current + tolerance:
        raise SignatureError(
            SignatureReason.TIMESTAMP_TOO_NEW, f"signed {sent_at - current} s in the future"
        )

    expected = _signature(key, msg_id, stamp, body).encode("ascii")
    for entry in presented.split():
        version, _, _ = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        if hmac.compare_digest(entry.encode("utf-8", errors="surrogatepass"), expected):
            return
    raise SignatureError(
        SignatureReason.NO_MATCHING_SIGNATURE, f"no {SIGNATURE_VERSION} signature matches"
    )


def _signature(key: bytes, msg_id: str, stamp: str, body: bytes) -> str:
    prefix = f"{msg_id}.{stamp}.".encode("utf-8", errors="surrogatepass")
    digest = hmac.new(key, prefix + _as_bytes(body), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def _as_bytes(body: object) -> bytes:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8", errors="surrogatepass")
    raise ValueError("webhook body must be bytes")


def _header(headers: Mapping[str, str], name: str) -> str:
    """Find a header by case-insensitive name; a missing or empty one is refused."""
    pairs = headers.items() if isinstance(headers, Mapping) else ()
    for key, value in pairs:
        if isinstance(key, bytes | bytearray):
            key = bytes(key).decode("latin-1")
        if not isinstance(key, str) or key.strip().lower() != name:
            continue
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("latin-1")
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise SignatureError(SignatureReason.MISSING_HEADER, f"{name} header is missing")
