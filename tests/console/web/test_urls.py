"""Every link is built whole: hostile names stay one path segment, empty filters vanish."""

from __future__ import annotations

from urllib.parse import unquote

from console.web import urls


def test_a_group_id_with_slashes_question_marks_and_a_line_break_is_one_segment() -> None:
    link = urls.group("prod", "team/a?b\nc")
    path, _, query = link.partition("?")
    assert path == "/groups/team%2Fa%3Fb%0Ac" and query == "cluster=prod"
    assert unquote(path.removeprefix("/groups/")) == "team/a?b\nc"


def test_record_links_and_their_json_twins() -> None:
    assert urls.event("c 1", "orders", 2, 30) == "/events/c%201/orders/2/30"
    assert urls.event("c", "orders", 2, 30, api=True) == "/api/events/c/orders/2/30"
    assert urls.dlq_message("c", "orders.DLT", 0, 5) == "/dlq/c/orders.DLT/0/5"
    assert urls.lineage("c", "t", 1, 2, api=True) == "/api/lineage/c/t/1/2"
    assert urls.trace("order/7") == "/trace/order%2F7"
    assert urls.saga(None, "s-1") == "/sagas/s-1"
    assert urls.saga("c", "s-1", api=True) == "/api/sagas/s-1?cluster=c"


def test_filters_leave_out_what_is_empty() -> None:
    assert urls.events(correlation_id="a&b", topic="", key=None) == "/events?correlation_id=a%26b"
    assert urls.events() == "/events"
    assert urls.new_job(kind="redrive", cluster="c", item="t/0/1") == (
        "/actions/new?kind=redrive&cluster=c&item=t%2F0%2F1"
    )
    assert urls.dlq_topic("c", "t", error_class="X") == "/dlq/c/t?error_class=X"
