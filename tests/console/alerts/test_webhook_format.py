import json
from datetime import UTC, datetime, timedelta, timezone

from console.alerts.webhook_format import (
    ZERO_TIME,
    AlertInstance,
    build_webhook_body,
    encode_body,
    fingerprint,
    format_time,
    group_key,
)

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def fnv1a_reference(labels: dict[str, str]) -> str:
    """Independent FNV-1a 64 over name 0xFF value 0xFF, sorted by name."""
    data = b"".join(
        name.encode() + b"\xff" + value.encode() + b"\xff" for name, value in sorted(labels.items())
    )
    h = 14695981039346656037
    for byte in data:
        h ^= byte
        h = (h * 1099511628211) % 2**64
    return format(h, "016x")


def alert(status: str = "firing", **labels: str) -> AlertInstance:
    return AlertInstance(
        labels=labels or {"alertname": "LagHigh"},
        annotations={"summary": "lag is high"},
        starts_at=START,
        ends_at=None if status == "firing" else START + timedelta(minutes=5),
        generator_url="https://console.example/rules/1",
        status=status,
    )


def test_body_has_exactly_the_alertmanager_fields_and_types():
    body = build_webhook_body(
        receiver="ops",
        group_labels={"alertname": "LagHigh"},
        alerts=[alert(alertname="LagHigh", topic="orders")],
        external_url="https://console.example",
    )
    assert set(body) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert body["version"] == "4"
    assert isinstance(body["groupKey"], str)
    assert body["truncatedAlerts"] == 0
    assert body["receiver"] == "ops"
    assert body["groupLabels"] == {"alertname": "LagHigh"}
    assert body["externalURL"] == "https://console.example"
    (entry,) = body["alerts"]
    assert set(entry) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert entry["labels"] == {"alertname": "LagHigh", "topic": "orders"}
    assert entry["annotations"] == {"summary": "lag is high"}
    assert entry["generatorURL"] == "https://console.example/rules/1"
    assert entry["fingerprint"] == fingerprint({"alertname": "LagHigh", "topic": "orders"})


def test_firing_alert_times_and_zero_ends_at():
    body = build_webhook_body(
        receiver="ops", group_labels={}, alerts=[alert()], external_url="https://x"
    )
    entry = body["alerts"][0]
    assert entry["status"] == "firing"
    assert entry["startsAt"] == "2024-05-01T12:00:00Z"
    assert entry["endsAt"] == "0001-01-01T00:00:00Z" == ZERO_TIME


def test_resolved_alert_carries_its_end_time():
    body = build_webhook_body(
        receiver="ops", group_labels={}, alerts=[alert("resolved")], external_url="https://x"
    )
    assert body["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == "2024-05-01T12:05:00Z"


def test_group_status_is_firing_when_any_alert_fires():
    mixed = [alert("resolved", alertname="A"), alert("firing", alertname="B")]
    body = build_webhook_body(receiver="r", group_labels={}, alerts=mixed, external_url="")
    assert body["status"] == "firing"
    assert [a["status"] for a in body["alerts"]] == ["resolved", "firing"]


def test_unknown_status_is_reported_as_firing():
    body = build_webhook_body(
        receiver="r", group_labels={}, alerts=[alert("weird")], external_url=""
    )
    assert body["status"] == "firing"
    assert body["alerts"][0]["status"] == "firing"


def test_common_labels_and_annotations_are_the_shared_pairs():
    first = alert(alertname="LagHigh", topic="orders", cluster="eu")
    second = alert(alertname="LagHigh", topic="payments", cluster="eu")
    body = build_webhook_body(
        receiver="r", group_labels={}, alerts=[first, second], external_url=""
    )
    assert body["commonLabels"] == {"alertname": "LagHigh", "cluster": "eu"}
    assert body["commonAnnotations"] == {"summary": "lag is high"}


def test_no_alerts_gives_empty_common_maps_and_resolved_status():
    body = build_webhook_body(receiver="r", group_labels={}, alerts=[], external_url="")
    assert body["commonLabels"] == {}
    assert body["alerts"] == []
    assert body["status"] == "resolved"


def test_truncated_alerts_counts_what_max_alerts_left_out():
    alerts = [alert(alertname="A", n=str(i)) for i in range(5)]
    body = build_webhook_body(
        receiver="r", group_labels={}, alerts=alerts, external_url="", max_alerts=2
    )
    assert len(body["alerts"]) == 2
    assert body["truncatedAlerts"] == 3
    # common labels still describe the whole group
    assert body["commonLabels"] == {"alertname": "A"}

    unlimited = build_webhook_body(
        receiver="r", group_labels={}, alerts=alerts, external_url="", max_alerts=0
    )
    assert len(unlimited["alerts"]) == 5
    assert unlimited["truncatedAlerts"] == 0


def test_fingerprint_matches_the_fnv1a_scheme_and_ignores_order():
    labels = {"alertname": "LagHigh", "topic": "orders", "group": "billing"}
    reordered = dict(reversed(list(labels.items())))
    assert fingerprint(labels) == fingerprint(reordered) == fnv1a_reference(labels)
    assert len(fingerprint(labels)) == 16
    # The empty set hashes to the FNV-1a 64 offset basis.
    assert fingerprint({}) == "cbf29ce484222325"


def test_fingerprint_differs_for_different_label_sets():
    assert fingerprint({"a": "b"}) != fingerprint({"a": "c"})
    assert fingerprint({"ab": "c"}) != fingerprint({"a": "bc"})
    assert fingerprint({"a": "b"}) != fingerprint({"a": "b", "c": ""})


def test_fingerprint_tolerates_hostile_text():
    assert len(fingerprint({"a\ud800": "\x00\udfff", "b": 5})) == 16  # type: ignore[dict-item]


def test_group_key_looks_like_alertmanagers():
    assert group_key("{}", {"alertname": "LagHigh"}) == '{}:{alertname="LagHigh"}'
    assert group_key('{}/{env="prod"}', {"b": "2", "a": "1"}) == '{}/{env="prod"}:{a="1", b="2"}'
    assert group_key("{}", {}) == "{}:{}"
    assert group_key("{}", {"a": 'say "hi"\n'}) == '{}:{a="say \\"hi\\"\\n"}'


def test_times_are_rfc3339_utc_with_z():
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)) == "2024-05-01T12:00:00Z"
    assert format_time(datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)) == (
        "2024-05-01T12:00:00.5Z"
    )
    assert format_time(datetime(2024, 5, 1, 12, 0)) == "2024-05-01T12:00:00Z"  # naive = UTC
    assert format_time(None) == ZERO_TIME
    extreme = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))
    assert format_time(extreme) == ZERO_TIME


def test_encode_body_is_compact_stable_utf8_json():
    body = build_webhook_body(
        receiver="ops",
        group_labels={"alertname": "Lag ü"},
        alerts=[alert(alertname="Lag ü")],
        external_url="https://x",
    )
    raw = encode_body(body)
    assert json.loads(raw.decode("utf-8")) == body
    assert b", " not in raw and b": " not in raw
    assert "ü".encode() in raw
    shuffled = dict(reversed(list(body.items())))
    assert encode_body(shuffled) == raw


def test_encode_body_survives_lone_surrogates_and_rejects_nan():
    body = build_webhook_body(
        receiver="r\ud800", group_labels={"x": "\udfff"}, alerts=[], external_url=""
    )
    json.loads(encode_body(body).decode("utf-8"))
    try:
        encode_body({"v": float("nan")})
    except ValueError:
        pass
    else:
        raise AssertionError("NaN must be refused")
