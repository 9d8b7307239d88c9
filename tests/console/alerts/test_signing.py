import base64
import hashlib
import hmac

import pytest

from console.alerts.signing import (
    SignatureError,
    SignatureReason,
    generate_secret,
    secret_key,
    sign,
    signature_headers,
    verify,
)

# Example values published with the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_700_000_000
BODY = b'{"version":"4","status":"firing"}'


def test_matches_the_standard_webhooks_example():
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_matches_an_independently_computed_hmac():
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    mac = hmac.new(key, f"msg_1.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(secret, "msg_1", NOW, BODY) == "v1," + base64.b64encode(mac).decode()


def test_round_trip_with_generated_secret():
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(secret_key(secret)) >= 24
    assert generate_secret() != secret
    headers = signature_headers(secret, "msg_1", NOW, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(NOW)
    verify(secret, headers, BODY, now=NOW)


def reason_of(secret: str, headers: dict[str, str], body: bytes, now: int) -> SignatureReason:
    with pytest.raises(SignatureError) as caught:
        verify(secret, headers, body, now=now)
    assert isinstance(caught.value, ValueError)
    return caught.value.reason


def test_tampering_is_detected():
    secret = generate_secret()
    headers = signature_headers(secret, "msg_1", NOW, BODY)
    no_match = SignatureReason.NO_MATCHING_SIGNATURE
    assert reason_of(secret, headers, BODY + b" ", NOW) is no_match
    assert reason_of(secret, {**headers, "webhook-id": "msg_2"}, BODY, NOW) is no_match
    moved = {**headers, "webhook-timestamp": str(NOW + 1)}
    assert reason_of(secret, moved, BODY, NOW) is no_match
    assert reason_of(generate_secret(), headers, BODY, NOW) is no_match


def test_tolerance_window_both_ways():
    secret = generate_secret()
    headers = signature_headers(secret, "msg_1", NOW, BODY)
    verify(secret, headers, BODY, now=NOW + 300)
    verify(secret, headers, BODY, now=NOW - 300)
    assert reason_of(secret, headers, BODY, NOW + 301) is SignatureReason.TIMESTAMP_TOO_OLD
    assert reason_of(secret, headers, BODY, NOW - 301) is SignatureReason.TIMESTAMP_TOO_NEW


def test_missing_or_unreadable_headers():
    secret = generate_secret()
    headers = signature_headers(secret, "msg_1", NOW, BODY)
    for name in headers:
        partial = {k: v for k, v in headers.items() if k != name}
        assert reason_of(secret, partial, BODY, NOW) is SignatureReason.MISSING_HEADER
    for stamp in ("", "abc", "-5", "1e9", "١٢٣", "9" * 40):
        bad = {**headers, "webhook-timestamp": stamp}
        assert reason_of(secret, bad, BODY, NOW) in (
            SignatureReason.INVALID_TIMESTAMP,
            SignatureReason.MISSING_HEADER,
        )


def test_header_names_are_case_insensitive():
    secret = generate_secret()
    headers = {k.upper(): v for k, v in signature_headers(secret, "m", NOW, BODY).items()}
    verify(secret, headers, BODY, now=NOW)


def test_any_of_several_signatures_may_match_and_other_versions_are_ignored():
    old, new = generate_secret(), generate_secret()
    headers = signature_headers(new, "msg_1", NOW, BODY, extra_secrets=[old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify(old, headers, BODY, now=NOW)
    verify(new, headers, BODY, now=NOW)

    genuine = sign(new, "msg_1", NOW, BODY)
    mixed = {
        **headers,
        "webhook-signature": f"v1a,{genuine[3:]} v2,{genuine[3:]} v1,AAAA {genuine}",
    }
    verify(new, mixed, BODY, now=NOW)
    only_other_versions = {**headers, "webhook-signature": f"v1a,{genuine[3:]} v2,{genuine[3:]}"}
    assert reason_of(new, only_other_versions, BODY, NOW) is SignatureReason.NO_MATCHING_SIGNATURE


def test_hostile_signature_header_is_refused_not_crashed():
    secret = generate_secret()
    headers = signature_headers(secret, "msg_1", NOW, BODY)
    hostile = {**headers, "webhook-signature": "v1,ü\ud800 " + "x" * 10_000}
    assert reason_of(secret, hostile, BODY, NOW) is SignatureReason.NO_MATCHING_SIGNATURE


def test_secret_without_prefix_is_accepted():
    bare = SPEC_SECRET.removeprefix("whsec_")
    assert secret_key(bare) == secret_key(SPEC_SECRET)
    assert sign(bare, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    unpadded = "whsec_" + base64.b64encode(b"0123456789abcdefghijk").decode().rstrip("=")
    assert secret_key(unpadded) == b"0123456789abcdefghijk"


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_not base64!", "whsec_ü", "whsec_a"])
def test_bad_secret_raises_a_clear_value_error(bad):
    with pytest.raises(ValueError, match="webhook secret"):
        secret_key(bad)
    with pytest.raises(ValueError, match="webhook secret"):
        sign(bad, "m", NOW, BODY)
