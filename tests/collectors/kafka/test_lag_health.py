"""The shown status of a group: Burrow's verdict, time-lag thresholds and hysteresis."""

from __future__ import annotations

import pytest

from collectors.config import ConfigError, lag_health_settings, settings_from_mapping
from collectors.kafka.lag_health import (
    HealthSettings,
    HealthTracker,
    SlowestPartition,
    TimeLagThresholds,
)
from collectors.kafka.lag_rules import (
    CommitSample,
    GroupEvaluation,
    GroupStatus,
    PartitionEvaluation,
    PartitionReport,
    PartitionStatus,
)

OK = GroupEvaluation(GroupStatus.OK, 1.0, 0, None, 1, ())
NOT_FOUND = GroupEvaluation(GroupStatus.NOTFOUND, 0.0, 0, None, 0, ())
SAMPLE = CommitSample(0.0, 5, 3)
STALLED = GroupEvaluation(
    GroupStatus.ERR, 1.0, 3, None, 1,
    (PartitionReport("orders", 0, PartitionEvaluation(
        PartitionStatus.STALL, 1.0, 3, SAMPLE, SAMPLE, "offset stays at 5")),),
)  # fmt: skip


def behind(seconds: float) -> SlowestPartition:
    return SlowestPartition("orders", 2, seconds)


def test_a_group_28_s_behind_is_not_ok_although_burrow_says_ok() -> None:
    tracker = HealthTracker(HealthSettings())
    health = tracker.judge("notify", 100.0, OK, behind(28.0))
    assert health.status is GroupStatus.WARN
    assert health.burrow_status is GroupStatus.OK
    assert "28.0 s on orders[2]" in health.explanation
    assert "over the warning threshold (warning at 10 s, error at 60 s)" in health.explanation
    assert tracker.judge("slow", 100.0, OK, behind(61.0)).status is GroupStatus.ERR
    assert tracker.judge("fine", 100.0, OK, behind(0.4)).status is GroupStatus.OK


def test_a_spike_every_minute_keeps_the_status_instead_of_flapping() -> None:
    tracker = HealthTracker(HealthSettings(hold_s=120.0))
    shown = []
    for second in range(0, 600, 10):  # a 28 s spike at the start of every minute
        lag = 28.0 if second % 60 == 0 else 0.5
        shown.append(tracker.judge("notify", float(second), OK, behind(lag)).status)
    assert set(shown) == {GroupStatus.WARN}


def test_the_status_improves_once_the_hold_has_passed_without_a_breach() -> None:
    tracker = HealthTracker(HealthSettings(hold_s=60.0))
    assert tracker.judge("g", 0.0, STALLED, behind(1.0)).status is GroupStatus.ERR
    held = tracker.judge("g", 30.0, OK, behind(1.0))
    assert held.status is GroupStatus.ERR and held.look_status is GroupStatus.OK
    assert held.held_until == 60.0
    assert "Held at ERR" in held.explanation and "30.0 s ago" in held.explanation
    assert tracker.judge("g", 60.0, OK, behind(1.0)).status is GroupStatus.OK


def test_an_error_steps_down_through_a_held_warning() -> None:
    tracker = HealthTracker(HealthSettings(hold_s=60.0))
    tracker.judge("g", 0.0, OK, behind(90.0))  # ERR
    tracker.judge("g", 40.0, OK, behind(20.0))  # WARN
    assert tracker.judge("g", 70.0, OK, behind(1.0)).status is GroupStatus.WARN
    assert tracker.judge("g", 100.0, OK, behind(1.0)).status is GroupStatus.OK


def test_burrow_errors_are_explained_with_their_partitions() -> None:
    health = HealthTracker(HealthSettings()).judge("g", 0.0, STALLED, None)
    assert health.status is GroupStatus.ERR
    assert "orders[0] STALL, offset stays at 5" in health.explanation
    assert "No time lag is known yet" in health.explanation


def test_not_found_clears_what_was_held() -> None:
    tracker = HealthTracker(HealthSettings())
    tracker.judge("g", 0.0, STALLED, None)
    assert tracker.judge("g", 1.0, NOT_FOUND, None).status is GroupStatus.NOTFOUND
    assert tracker.judge("g", 2.0, OK, None).status is GroupStatus.OK


def test_thresholds_per_group_exact_id_first_then_patterns() -> None:
    settings = HealthSettings(
        per_group={
            "batch-*": TimeLagThresholds(600.0, None),
            "batch-nightly": TimeLagThresholds(None, None),
        }
    )
    assert settings.thresholds_for("batch-nightly").judge(10_000.0) is GroupStatus.OK
    assert settings.thresholds_for("batch-hourly").judge(700.0) is GroupStatus.WARN
    assert settings.thresholds_for("batch-hourly").judge(10_000.0) is GroupStatus.WARN
    assert settings.thresholds_for("orders").judge(700.0) is GroupStatus.ERR


def test_configuration_of_thresholds_and_its_errors() -> None:
    settings = settings_from_mapping(
        {"lag": {"time_lag_warn_s": 5, "hold_s": 30,
                 "groups": {"batch-*": {"time_lag_warn_s": 600, "time_lag_err_s": 0}}}}
    )  # fmt: skip
    health = lag_health_settings(settings.lag)
    assert health.default == TimeLagThresholds(5.0, 60.0)
    assert health.thresholds_for("batch-1") == TimeLagThresholds(600.0, None)
    assert health.hold_s == 30.0
    bad = [
        ({"time_lag_warn_s": -1}, "lag.time_lag_warn_s"),
        ({"time_lag_warn_s": "soon"}, "lag.time_lag_warn_s"),
        ({"time_lag_warn_s": 90}, "lag"),  # above the error threshold
        ({"hold_s": -5}, "lag.hold_s"),
        ({"groups": {"g": {"warn": 1}}}, "lag.groups.g.warn"),
        ({"groups": {"g": 3}}, "lag.groups.g"),
        ({"groups": ["g"]}, "lag.groups"),
    ]
    for body, key in bad:
        with pytest.raises(ConfigError) as raised:
            settings_from_mapping({"lag": body})
        assert raised.value.key == key, (body, str(raised.value))
