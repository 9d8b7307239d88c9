"""The offset-reset plan: parsing what a person typed, clamping, and what each row means."""

from __future__ import annotations

import pytest

from console.operations.fields import PlanError
from console.operations.offset_plan import ResetRequest, Targets, parse_request, plan

T = "orders"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"strategy": "rewind"}, "strategy: one of earliest"),
        ({"strategy": "shift"}, "shift needs one"),
        ({"strategy": "shift", "value": "0"}, "other than 0"),
        ({"strategy": "shift", "value": "ten"}, "whole number other than 0"),
        ({"strategy": "offset", "value": "-1"}, "0 or more"),
        ({"strategy": "timestamp", "value": "yesterday"}, "not a time"),
        ({"strategy": "group", "value": "g1"}, "another consumer group"),
        ({"strategy": "latest", "partitions": "0"}, "choose a topic first"),
        ({"strategy": "latest", "topic": T, "partitions": "0, x"}, "'x' is not a partition"),
        ({"strategy": "latest", "cluster": "other"}, "cluster: one of local"),
    ],
)
def test_bad_requests_say_what_is_wrong(raw: dict, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_request(raw, ["local"], "g1")


def test_a_form_becomes_a_request() -> None:
    raw = {"strategy": "timestamp", "value": "2026-12-03T10:00:00Z", "topic": T,
           "partitions": "2, 0 2"}  # fmt: skip
    request = parse_request(raw, ["local"], "g1")
    assert request == ResetRequest("local", "g1", "timestamp", "2026-12-03T10:00:00Z", T, (0, 2))
    assert request.describe() == "to timestamp 2026-12-03T10:00:00Z on topic orders partitions 0, 2"


def test_targets_are_clamped_to_the_log_and_rows_count_what_changes() -> None:
    kafka = Targets(committed={(T, 0): 50, (T, 1): 5}, begin={(T, 0): 10, (T, 1): 0},
                    end={(T, 0): 100, (T, 1): 40})  # fmt: skip
    rows = plan(ResetRequest("local", "g", "offset", "70"), [(T, 1), (T, 0)], kafka)
    assert [(r["partition"], r["new"], r["skipped"], r["reconsumed"]) for r in rows] == [
        (0, 70, 20, 0),
        (1, 40, 35, 0),
    ]
    assert rows[1]["note"] == "70 is outside the log: the partition's end, 40"
    assert (rows[0]["lag_before"], rows[0]["lag_after"]) == (50, 30)


def test_a_shift_without_a_committed_offset_leaves_the_partition_alone() -> None:
    kafka = Targets(committed={(T, 0): 50}, begin={}, end={(T, 0): 100, (T, 1): 9})
    rows = plan(ResetRequest("local", "g", "shift", "-20"), [(T, 0), (T, 1)], kafka)
    assert [(r["new"], r["reconsumed"]) for r in rows] == [(30, 20), (None, 0)]
    assert "no committed offset" in (rows[1]["note"] or "")
