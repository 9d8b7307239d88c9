import pytest

from console.alerts.grouping import (
    GroupState,
    GroupTiming,
    after_notification,
    alerts_to_send,
    due,
    group_labels_of,
    next_due_at,
    notification_hash,
)

TIMING = GroupTiming()  # 30 s wait, 5 min interval, 4 h repeat, send resolved
QUIET = GroupTiming(send_resolved=False)
T0 = 1_000_000.0


def notify(state, alerts, now, timing=TIMING):
    assert due(state, alerts, now, timing)
    return after_notification(state, alerts, now, timing)


def test_group_labels_pick_the_group_by_names():
    labels = {"alertname": "LagHigh", "topic": "orders", "partition": "3"}
    assert group_labels_of(labels, ["topic", "alertname"]) == {
        "alertname": "LagHigh",
        "topic": "orders",
    }
    assert group_labels_of(labels, ["missing"]) == {}
    assert group_labels_of(labels, []) == {}
    assert group_labels_of(labels, ["..."]) == labels
    assert group_labels_of(labels, "topic") == {"topic": "orders"}


def test_notification_hash_is_order_independent_and_status_sensitive():
    a = [("f1", "firing"), ("f2", "resolved")]
    assert notification_hash(a) == notification_hash(list(reversed(a)))
    assert notification_hash(a) != notification_hash([("f1", "firing"), ("f2", "firing")])
    assert notification_hash(a, send_resolved=False) == notification_hash([("f1", "firing")])


def test_nothing_before_group_wait_then_one_notification():
    state = GroupState(created_at=T0)
    alerts = [("f1", "firing")]
    assert not due(state, alerts, T0, TIMING)
    assert not due(state, alerts, T0 + 29.9, TIMING)
    assert due(state, alerts, T0 + 30, TIMING)
    state = after_notification(state, alerts, T0 + 30, TIMING)
    assert state.last_notified_at == T0 + 30
    assert state.last_notified_hash == notification_hash(alerts)
    assert not due(state, alerts, T0 + 31, TIMING)


def test_group_resolved_before_first_notification_stays_silent():
    state = GroupState(created_at=T0)
    assert next_due_at(state, [("f1", "resolved")], TIMING) is None
    assert not due(state, [], T0 + 3600, TIMING)


def test_change_waits_for_group_interval():
    state = notify(GroupState(created_at=T0), [("f1", "firing")], T0 + 30)
    changed = [("f1", "firing"), ("f2", "firing")]
    assert not due(state, changed, T0 + 30 + 299, TIMING)
    assert due(state, changed, T0 + 30 + 300, TIMING)


def test_unchanged_group_repeats_after_repeat_interval():
    alerts = [("f1", "firing")]
    state = notify(GroupState(created_at=T0), alerts, T0 + 30)
    assert not due(state, alerts, T0 + 30 + 300, TIMING)
    assert not due(state, alerts, T0 + 30 + 14399, TIMING)
    assert due(state, alerts, T0 + 30 + 14400, TIMING)


def test_alert_leaving_the_group_is_not_a_change():
    state = notify(GroupState(created_at=T0), [("f1", "firing"), ("f2", "firing")], T0 + 30)
    assert next_due_at(state, [("f1", "firing")], TIMING) == T0 + 30 + 14400


def test_resolution_is_sent_after_group_interval_when_send_resolved():
    state = notify(GroupState(created_at=T0), [("f1", "firing"), ("f2", "firing")], T0 + 30)
    partly = [("f1", "firing"), ("f2", "resolved")]
    assert next_due_at(state, partly, TIMING) == T0 + 330
    assert alerts_to_send(partly, TIMING) == [("f1", "firing"), ("f2", "resolved")]
    state = notify(state, partly, T0 + 330)
    # the same resolved alert is not news twice
    assert next_due_at(state, partly, TIMING) == T0 + 330 + 14400


def test_all_resolved_is_sent_once_and_never_repeated():
    state = notify(GroupState(created_at=T0), [("f1", "firing")], T0 + 30)
    resolved = [("f1", "resolved")]
    assert due(state, resolved, T0 + 330, TIMING)
    state = after_notification(state, resolved, T0 + 330, TIMING)
    assert next_due_at(state, resolved, TIMING) is None
    assert not due(state, resolved, T0 + 10**7, TIMING)


def test_without_send_resolved_a_resolution_alone_is_not_news():
    state = notify(GroupState(created_at=T0), [("f1", "firing"), ("f2", "firing")], T0 + 30, QUIET)
    partly = [("f1", "firing"), ("f2", "resolved")]
    assert not due(state, partly, T0 + 330, QUIET)
    assert due(state, partly, T0 + 30 + 14400, QUIET)  # repeats the still-firing alert
    assert alerts_to_send(partly, QUIET) == [("f1", "firing")]
    assert next_due_at(state, [("f1", "resolved"), ("f2", "resolved")], QUIET) is None


def test_new_firing_alert_is_a_change_even_without_send_resolved():
    state = notify(GroupState(created_at=T0), [("f1", "firing")], T0 + 30, QUIET)
    assert next_due_at(state, [("f1", "firing"), ("f3", "firing")], QUIET) == T0 + 330


def test_refiring_after_resolution_is_a_change():
    state = notify(GroupState(created_at=T0), [("f1", "firing")], T0 + 30)
    state = notify(state, [("f1", "resolved")], T0 + 330)
    assert next_due_at(state, [("f1", "firing")], TIMING) == T0 + 630


def test_hostile_alert_entries_are_ignored_and_unknown_status_fires():
    state = GroupState(created_at=T0)
    alerts: list = [("f1", "pending"), "junk", (1, 2, 3), None]
    assert next_due_at(state, alerts, TIMING) == T0 + 30
    assert alerts_to_send(alerts, TIMING) == [("f1", "firing")]


def test_stored_state_with_lists_still_works():
    state = GroupState(
        created_at=T0,
        last_notified_at=T0 + 30,
        last_notified_firing=["f1"],  # type: ignore[arg-type]
    )
    assert next_due_at(state, [("f1", "firing")], TIMING) == T0 + 30 + 14400


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf")])
def test_invalid_timing_is_refused(value):
    with pytest.raises(ValueError):
        GroupTiming(group_wait_s=value)
