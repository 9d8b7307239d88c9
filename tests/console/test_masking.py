"""The masking matcher: JSON paths, regexes, headers, odd bytes, and who gets masked."""

from __future__ import annotations

import base64
import json

import pytest

from console.masking import (
    MaskingPolicy,
    MaskingRuleError,
    make_rule,
    mask_event,
    mask_headers,
    mask_payload,
    masker,
    parse_json_path,
)
from console.masking_rules import MaskingConfigError, masking_settings, rule_from_mapping

CARD = r"\b(?:\d[ -]?){12,15}\d\b"


def path(pattern: str, replacement: str | None = None):  # type: ignore[no-untyped-def]
    return make_rule(pattern, "json_path", pattern, replacement=replacement)


def regex(pattern: str = CARD):  # type: ignore[no-untyped-def]
    return make_rule("cards", "regex", pattern)


def masked(value: dict | list, *rules) -> object:  # type: ignore[no-untyped-def]
    out = mask_payload(json.dumps(value).encode(), list(rules))
    assert out is not None
    return json.loads(out)  # always valid JSON


def test_json_paths_mask_the_selected_values_and_keep_json_valid() -> None:
    order = {
        "customer": {"email": "ann@example.com", "name": "Ann"},
        "card": {"number": 4111111111111111, "expiry": "12/29"},
        "items": [{"sku": "a", "price": 10}, {"sku": "b", "price": 20.5}],
    }
    out = masked(order, path("$.customer.email"), path("$.card.number"), path("$.items[*].price"))
    assert out == {
        "customer": {"email": "***", "name": "Ann"},
        "card": {"number": "***", "expiry": "12/29"},
        "items": [{"sku": "a", "price": "***"}, {"sku": "b", "price": "***"}],
    }


def test_json_path_forms_quoted_index_wildcard_and_descent() -> None:
    doc = {"a b": [1, {"email": "x@y"}], "deep": {"deeper": {"email": "z@y"}}, "n": {"k": 1}}
    assert masked(doc, path("$['a b'][0]"))["a b"] == ["***", {"email": "x@y"}]
    assert masked(doc, path('$["a b"][-1].email'))["a b"][1] == {"email": "***"}
    out = masked(doc, path("$..email"))
    assert out["a b"][1]["email"] == "***" and out["deep"]["deeper"]["email"] == "***"
    assert masked(doc, path("$.n.*")) == {**doc, "n": {"k": "***"}}
    assert masked(doc, path("$.nope.email")) == doc
    assert masked([{"email": "a"}, {"email": "b"}], path("$[*].email")) == [
        {"email": "***"}, {"email": "***"},
    ]  # fmt: skip


def test_a_path_that_selects_a_subtree_masks_it_whole() -> None:
    assert masked({"card": {"number": 1, "cvv": 2}}, path("$.card")) == {"card": "***"}


@pytest.mark.parametrize(
    "bad",
    ["customer.email", "$", "$.a[?(@.x)]", "$.a[1:3]", "$.__import__('os')", "$.a..", "$..", "$."],
)
def test_unsupported_paths_are_refused_never_evaluated(bad: str) -> None:
    with pytest.raises(MaskingRuleError) as error:
        parse_json_path(bad)
    assert error.value.field == "json_path"


def test_regexes_mask_text_json_leaves_and_numbers() -> None:
    text = b"paid with 4111 1111 1111 1111 today"
    assert mask_payload(text, [regex()]) == b"paid with *** today"
    out = masked({"note": "card 4111-1111-1111-1111 ok", "pan": 4111111111111111, "n": 7}, regex())
    assert out == {"note": "card *** ok", "pan": "***", "n": 7}


def test_replacement_is_literal_not_a_template() -> None:
    rule = make_rule("r", "regex", r"(\d+)", replacement=r"\1-\g<0>")
    assert mask_payload(b"pin 1234", [rule]) == rb"pin \1-\g<0>"


def test_binary_payloads_matching_a_regex_are_masked_byte_for_byte() -> None:
    raw = b"\xff\xfe\x00card=4111111111111111\x00\x80"
    out = mask_payload(raw, [regex()])
    assert out == b"\xff\xfe\x00card=***\x00\x80"
    assert mask_payload(b"\xff\x00\x01", [regex()]) == b"\xff\x00\x01"


def test_invalid_json_is_masked_textually_by_the_last_member_name() -> None:
    truncated = b'{"customer": {"email": "ann@example.com", "name": "An'
    out = mask_payload(truncated, [path("$.customer.email")])
    assert out is not None and b"ann@example.com" not in out and b'"email": "***"' in out
    cut_in_value = b'{"customer": {"email": "ann@exa'
    out = mask_payload(cut_in_value, [path("$.customer.email")])
    assert out is not None and b"ann@exa" not in out
    # a path ending in an index cannot be followed in broken text: hide the whole payload
    assert mask_payload(b'{"cards": ["4111", ', [path("$.cards[0]")]) == b'"***"'
    # text that is not JSON at all is left to regex rules
    assert mask_payload(b"email ann@example.com", [path("$.email")]) == b"email ann@example.com"


def test_unmasked_payloads_keep_their_exact_bytes() -> None:
    original = b'{ "a" : 1,\n "b": "x" }'
    assert mask_payload(original, [path("$.c"), regex()]) is original
    assert mask_payload(None, [regex()]) is None
    assert mask_payload(b"", [regex()]) == b""


def test_huge_payloads_are_masked() -> None:
    items = [{"sku": f"s{i}", "price": i, "email": f"u{i}@example.com"} for i in range(20_000)]
    big = json.dumps({"items": items, "note": "4111 1111 1111 1111"}).encode()
    assert len(big) > 1_000_000
    out = mask_payload(big, [path("$.items[*].email"), regex()])
    assert out is not None and b"@example.com" not in out and b"1111 1111" not in out
    text = b"x" * 2_000_000 + b" 4111111111111111"
    assert mask_payload(text, [regex()]) == b"x" * 2_000_000 + b" ***"


def test_json_nested_too_deep_to_parse_is_still_masked() -> None:
    deep = ("[" * 50_000 + '{"secret": "s3cr3t"}' + "]" * 50_000).encode()
    out = mask_payload(deep, [path("$..secret")])
    assert out is not None and b"s3cr3t" not in out and b'"secret": "***"' in out


def test_headers_by_name_case_insensitive_and_by_regex() -> None:
    card_b64 = base64.b64encode(b"\x00\x014111111111111111").decode()
    stored = json.dumps([
        ["Authorization", "Bearer abc"],
        ["authorization", {"text": "Bearer def", "truncated": False, "size": 10}],
        ["note", "card 4111111111111111"],
        ["bin", {"b64": card_b64, "size": 18}],
        ["empty", None],
        ["keep", "plain"],
    ])  # fmt: skip
    out = json.loads(mask_headers(stored, [make_rule("h", "header", "AUTHORIZATION"), regex()]))
    assert out[0] == ["Authorization", "***"] and out[1] == ["authorization", "***"]
    assert out[2] == ["note", "card ***"]
    assert base64.b64decode(out[3][1]["b64"]) == b"\x00\x01***"
    assert out[4] == ["empty", None] and out[5] == ["keep", "plain"]
    assert mask_headers("not json", [regex()]) == "[]"


def row(**values):  # type: ignore[no-untyped-def]
    base = {
        "topic": "payments",
        "key": b"4111111111111111",
        "value": b'{"card": {"number": "4111111111111111"}, "amount": 5}',
        "headers": json.dumps([["kafka_dlt-exception-message", "bad card 4111111111111111"]]),
        "dlq_error_message": "bad card 4111111111111111",
        "dlq_stacktrace": None,
    }
    return {**base, **values}


def test_mask_event_masks_key_value_headers_and_derived_error_text() -> None:
    policy = MaskingPolicy(rules=(regex(), path("$.card.number")), apply_to="viewers")
    out = mask_event(row(), policy, "viewer")
    assert out["key"] == b"***"
    assert json.loads(out["value"]) == {"card": {"number": "***"}, "amount": 5}
    assert "4111" not in out["headers"] and out["dlq_error_message"] == "bad card ***"
    hidden = MaskingPolicy(
        rules=(make_rule("h", "header", "kafka_dlt-exception-message"),),
        derived_from={"dlq_error_message": ("kafka_dlt-exception-message",)},
    )
    assert mask_event(row(), hidden, "viewer")["dlq_error_message"] == "***"


def test_rows_without_some_columns_are_fine() -> None:
    policy = MaskingPolicy(rules=(regex(),))
    assert mask_event({"topic": "t", "key": b"4111111111111111"}, policy, "viewer") == {
        "topic": "t", "key": b"***",
    }  # fmt: skip


def test_who_is_masked() -> None:
    viewers = MaskingPolicy(rules=(regex(),), apply_to="viewers")
    everyone = MaskingPolicy(rules=(regex(),), apply_to="everyone")
    original = row()
    for role in ("viewer", None, "someone"):
        assert mask_event(original, viewers, role)["key"] == b"***"
    for role in ("operator", "admin"):
        assert mask_event(original, viewers, role) == original
        assert mask_event(original, everyone, role)["key"] == b"***"
    assert masker(MaskingPolicy(), "viewer")(original) == original
    assert original["key"] == b"4111111111111111"  # the input row is never changed


def test_topic_scoped_rules() -> None:
    rule = make_rule("r", "regex", CARD, topics="pay.*")
    policy = MaskingPolicy(rules=(rule,))
    assert mask_event(row(), policy, "viewer")["key"] == b"***"
    assert mask_event(row(topic="orders"), policy, "viewer")["key"] == b"4111111111111111"
    assert mask_event(row(topic="xpayments"), policy, "viewer")["key"] == b"4111111111111111"


def test_rule_bodies_and_the_config_section_name_the_bad_key() -> None:
    assert rule_from_mapping({"name": "n", "kind": "header", "pattern": "x"}).kind == "header"
    for body, key in (
        ({"name": "n"}, "regex"),
        ({"name": "n", "regex": "("}, "regex"),
        ({"name": "n", "regex": ".*"}, "regex"),
        ({"name": "n", "json_path": "$.a", "regex": "b"}, "regex"),
        ({"name": "n", "regex": "b", "topics": "("}, "topics"),
        ({"name": "n", "regex": "b", "colour": "red"}, "colour"),
        ({"name": "", "regex": "b"}, "name"),
        ({"name": "n", "kind": "sql", "pattern": "x"}, "kind"),
        ({"name": "n", "regex": "b", "replacement": "\n"}, "replacement"),
    ):
        with pytest.raises(MaskingRuleError) as error:
            rule_from_mapping(body)
        assert error.value.field == key, body
    settings = masking_settings(
        {"apply_to": "everyone", "rules": [{"header": "a"}, {"regex": "b"}]}
    )
    assert settings.apply_to == "everyone" and [r.name for r in settings.rules] == [
        "config rule 1", "config rule 2",
    ]  # fmt: skip
    for raw, key in (
        ({"apply_to": "all"}, "apply_to"),
        ({"rules": {"a": 1}}, "rules"),
        ({"rules": [{"regex": "("}]}, "rules[0].regex"),
        ({"rules": [{"name": "x", "regex": "a"}, {"name": "x", "regex": "b"}]}, "rules[1].name"),
        ({"mode": 1}, "mode"),
    ):
        with pytest.raises(MaskingConfigError) as config_error:
            masking_settings(raw)
        assert config_error.value.key == key
