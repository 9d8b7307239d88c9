"""Rule and [alerts] parsing: every error names its key; secrets never leave `config check`."""

from __future__ import annotations

import pytest

from collectors.config import ConfigError, redacted
from console.alerts.rules import (
    RuleError,
    format_duration,
    parse_duration,
    render,
    rule_from_mapping,
)
from console.alerts.settings import alert_settings
from console.settings import settings_from_mapping

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_durations_read_like_prometheus() -> None:
    assert parse_duration("1h30m", "for") == 5400
    assert parse_duration("90", "for") == 90
    assert parse_duration(2.5, "for") == 2.5
    assert parse_duration("250ms", "for") == 0.25
    assert format_duration(5400) == "1h30m" and format_duration(0) == "0s"
    for bad in ("5 minutes", "-1s", "1h-", True, None, "1y"):
        with pytest.raises(RuleError) as error:
            parse_duration(bad, "for")
        assert error.value.key == "for"


def test_a_rule_round_trips_and_defaults_apply() -> None:
    rule = rule_from_mapping(
        {
            "name": "DlqGrowing",
            "kind": "dlq",
            "topic": "*.DLT",
            "for": "2m",
            "labels": {"team": "pay"},
        }
    )
    assert (rule.window_s, rule.threshold, rule.for_s, rule.severity) == (300, 0, 120, "warning")
    assert rule_from_mapping(rule.to_mapping()) == rule
    saga = rule_from_mapping({"name": "S", "kind": "saga", "statuses": ["stuck"]})
    assert saga.statuses == ("stuck",)
    status = rule_from_mapping({"name": "G", "kind": "group_status"})
    assert status.statuses == ("WARN", "ERR")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"kind": "dlq"}, "name"),
        ({"name": "9lives", "kind": "dlq"}, "name"),
        ({"name": "X", "kind": "nope"}, "kind"),
        ({"name": "X", "kind": "offset_lag"}, "threshold"),
        ({"name": "X", "kind": "offset_lag", "threshold": -1}, "threshold"),
        ({"name": "X", "kind": "offset_lag", "threshold": 1, "topic": "t"}, "topic"),
        ({"name": "X", "kind": "dlq", "severity": "page"}, "severity"),
        ({"name": "X", "kind": "dlq", "labels": {"alertname": "Y"}}, "labels.alertname"),
        ({"name": "X", "kind": "dlq", "labels": {"team": 3}}, "labels.team"),
        ({"name": "X", "kind": "saga", "statuses": ["running"]}, "statuses"),
        ({"name": "X", "kind": "topic_silent", "window": "0s"}, "window"),
    ],
)
def test_bad_rules_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(RuleError) as error:
        rule_from_mapping(data)
    assert error.value.key == key


def test_annotations_fill_labels_and_value_and_nothing_else() -> None:
    labels = {"group": "orders"}
    text = "{{ $labels.group }} is {{$value}} behind {{ .Foo }} {{ $labels.none }}"
    assert render(text, labels, 1500.0) == "orders is 1500 behind {{ .Foo }} "


def test_alerts_section_errors_are_prefixed_with_the_full_key() -> None:
    cases = [
        (
            {"rules": [{"name": "A", "kind": "dlq"}, {"name": "B", "kind": "time_lag"}]},
            "alerts.rules[1].threshold",
        ),
        (
            {"rules": [{"name": "A", "kind": "dlq"}, {"name": "A", "kind": "dlq"}]},
            "alerts.rules[1].name",
        ),
        ({"receivers": [{"name": "r", "url": "file:///etc/passwd"}]}, "alerts.receivers[0].url"),
        (
            {"receivers": [{"name": "r", "url": "http://x", "secret": "whsec_!!"}]},
            "alerts.receivers[0].secret",
        ),
        (
            {"receivers": [{"name": "r", "url": "http://x", "headers": {"webhook-id": "x"}}]},
            "alerts.receivers[0].headers.webhook-id",
        ),
        ({"group_wait": "soon"}, "alerts.group_wait"),
        ({"colour": "red"}, "alerts.colour"),
    ]
    for section, key in cases:
        with pytest.raises(ConfigError) as error:
            settings_from_mapping({"alerts": section})
        assert error.value.key == key, section


def test_defaults_are_alertmanagers() -> None:
    timing = alert_settings({}).timing
    assert (timing.group_wait_s, timing.group_interval_s, timing.repeat_interval_s) == (
        30,
        300,
        14400,
    )
    assert timing.send_resolved is True


def test_config_check_redacts_receiver_secrets_and_header_values() -> None:
    settings = settings_from_mapping(
        {
            "alerts": {
                "receivers": [
                    {
                        "name": "r",
                        "url": "https://user:pw@hooks.example/x",
                        "secret": SECRET,
                        "headers": {"Authorization": "Bearer abc"},
                    }
                ]
            }
        }
    )
    shown = str(redacted(settings))
    assert SECRET not in shown and "Bearer abc" not in shown and ":pw@" not in shown
    receiver = redacted(settings)["alerts"]["receivers"][0]
    assert receiver["secret"] == "***" and receiver["headers"] == {"Authorization": "***"}
