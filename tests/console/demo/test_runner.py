"""`eventscope demo` settings and option checks (no broker needed)."""

from __future__ import annotations

import re

import pytest

from console.demo.runner import DemoError, DemoOptions, check_options, demo_settings


def test_the_demo_console_is_loopback_without_login_and_taps_only_the_shop() -> None:
    settings = demo_settings("127.0.0.1:9092", DemoOptions(port=8700, topic_prefix="shop"))
    assert (settings.server.host, settings.server.port, settings.server.auth) == (
        "127.0.0.1",
        8700,
        "off",
    )
    assert settings.index.url == "sqlite:///eventscope-demo.db"
    [cluster] = settings.clusters
    assert cluster.bootstrap == "127.0.0.1:9092"
    [include] = cluster.include
    assert re.fullmatch(include, "shop.payment.commands-dlt")
    assert not re.fullmatch(include, "shopping.orders")
    assert settings.collector.group_id == "eventscope-shop"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DemoOptions(port=0), "--port"),
        (DemoOptions(rate=0), "--rate"),
        (DemoOptions(rate=-1), "--rate"),
        (DemoOptions(topic_prefix="a.b"), "--topic-prefix"),
        (DemoOptions(topic_prefix=""), "--topic-prefix"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(options: DemoOptions, message: str) -> None:
    with pytest.raises(DemoError, match=message):
        check_options(options)
