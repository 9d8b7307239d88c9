"""Consumer group pages, their JSON twins, /metrics and the topic page's group list."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from aiokafka import TopicPartition

from collectors.config import ClusterConfig
from collectors.index.engine import create_index_engine
from collectors.kafka.lag import LagSampler
from console.templating import human_duration
from tests.conftest import LiveServer, make_settings, serve_in_thread
from tests.kafka_helpers import create_topic, joined_consumer, produce


@contextmanager
def sampling_console(cluster: ClusterConfig, folder: Path, lag: dict) -> Iterator[LiveServer]:
    """A console whose only background service is a lag sampler with these `[lag]` keys."""
    from console.app import create_app

    settings = make_settings(cluster, f"sqlite:///{folder / 'index.db'}", lag=lag)
    engine = create_index_engine(settings.index.url)

    def services(state):  # type: ignore[no-untyped-def]
        return [LagSampler(c, state.engine, settings.lag) for c in settings.clusters]

    app = create_app(settings, mode="all", engine=engine, service_factory=services)
    with serve_in_thread(app) as url:
        yield LiveServer(url, settings, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def lag_server(kafka_cluster: ClusterConfig, tmp_path_factory) -> Iterator[LiveServer]:
    """A fast lag sampler."""
    folder = tmp_path_factory.mktemp("groups")
    with sampling_console(kafka_cluster, folder, {"interval_s": 0.5, "window": 4}) as server:
        yield server


@pytest.fixture(scope="module")
def threshold_server(kafka_cluster: ClusterConfig, tmp_path_factory) -> Iterator[LiveServer]:
    """A fast lag sampler whose `g-slow-*` groups warn at a time lag of 1 s."""
    folder = tmp_path_factory.mktemp("thresholds")
    lag = {"interval_s": 0.5, "window": 20, "groups": {"g-slow-*": {"time_lag_warn_s": 1}}}
    with sampling_console(kafka_cluster, folder, lag) as server:
        yield server


async def _lagging_group(bootstrap: str, group_id: str, topic: str) -> None:
    """A group with 2 partitions: 3 records behind on partition 0, caught up on 1."""
    await create_topic(bootstrap, topic, partitions=2)
    await produce(bootstrap, topic, [(None, b"x", ())] * 5, partition=0)
    await produce(bootstrap, topic, [(None, b"x", ())] * 2, partition=1)
    consumer = await joined_consumer(bootstrap, topic, group_id)
    try:
        await consumer.commit({TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 2})
    finally:
        await consumer.stop()


def _wait_for_group(
    server: LiveServer,
    group_id: str,
    status: str | None = None,
    until: Callable[[dict], bool] = lambda body: True,
) -> dict:
    deadline = time.monotonic() + 20
    url = f"{server.url}/api/groups/{quote(group_id, safe='')}"
    while True:
        response = httpx.get(url, timeout=10)
        answered = response.status_code == 200
        if answered and status in (None, response.json()["status"]) and until(response.json()):
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"{group_id} was never sampled: {response.text}")
        time.sleep(0.2)


def test_durations_read_well() -> None:
    assert human_duration(None) == "\u2013"
    assert human_duration(0.25) == "250 ms"
    assert human_duration(42.04) == "42.0 s"
    assert human_duration(185) == "3m 05s"
    assert human_duration(7_800) == "2h 10m"


async def test_group_api_is_burrow_like_and_metrics_use_exporter_names(
    lag_server, kafka_bootstrap
) -> None:
    suffix = uuid.uuid4().hex[:8]
    group_id, topic = f"g-api-{suffix}", f"t-api-{suffix}"
    await _lagging_group(kafka_bootstrap, group_id, topic)
    body = _wait_for_group(lag_server, group_id)
    # OK while its window fills, then STOP (the consumer left): ERR for the group.
    assert body["status"] in ("OK", "ERR") and body["totallag"] == 3
    assert body["maxlag"]["partition"] == 0 and body["maxlag"]["lag"] == 3
    assert 0.0 <= body["complete"] <= 1.0
    assert [p["lag"] for p in body["partitions"]] == [3, 0]
    assert body["partitions"][1]["time_lag_method"] == "caught-up"
    assert {"series", "history", "range"} <= body.keys()

    listed = httpx.get(f"{lag_server.url}/api/groups", params={"q": suffix}, timeout=10).json()
    assert [g["group"] for g in listed["groups"]] == [group_id]
    topic_body = httpx.get(f"{lag_server.url}/api/clusters/local/topics/{topic}", timeout=20)
    assert [g["group"] for g in topic_body.json()["consumer_groups"]] == [group_id]

    metrics = httpx.get(f"{lag_server.url}/metrics", timeout=10)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert f'kafka_consumergroup_group_sum_lag{{cluster_name="local",group="{group_id}"}} 3' in text
    lag_line = next(
        line
        for line in text.splitlines()
        if line.startswith("kafka_consumergroup_group_lag{")
        and f'group="{group_id}"' in line
        and 'partition="0"' in line
    )
    assert lag_line.endswith(" 3") and f'topic="{topic}"' in lag_line
    assert (
        f'kafka_partition_latest_offset{{cluster_name="local",topic="{topic}",partition="0"}} 5'
        in text
    )
    assert "# TYPE kafka_consumergroup_group_max_lag_seconds gauge" in text


async def test_a_group_id_with_a_line_break_has_its_page(lag_server, kafka_bootstrap) -> None:
    """Group ids are any string: one holding a newline is listed and must open too."""
    suffix = uuid.uuid4().hex[:8]
    group_id, topic = f"g-line\nbreak-{suffix}", f"t-line-{suffix}"
    await _lagging_group(kafka_bootstrap, group_id, topic)
    # (a look taken between the consumer's join and its commit sees no lag yet)
    body = _wait_for_group(lag_server, group_id, until=lambda b: b["totallag"] == 3)
    assert body["group"] == group_id
    page = httpx.get(f"{lag_server.url}/groups/{quote(group_id, safe='')}", timeout=10)
    assert page.status_code == 200 and f"break-{suffix}" in page.text


def test_bad_input_is_a_400_and_unknown_groups_a_404(lag_server) -> None:
    for params in ({"sort": "nope"}, {"status": "PURPLE"}, {"q": "x" * 400}):
        response = httpx.get(f"{lag_server.url}/api/groups", params=params, timeout=10)
        assert response.status_code == 400, params
        assert response.json()["error"]
    assert httpx.get(f"{lag_server.url}/groups", params={"sort": "nope"}).status_code == 400
    response = httpx.get(f"{lag_server.url}/api/groups/no-such-group", timeout=10)
    assert response.status_code == 404 and "no-such-group" in response.json()["error"]
    response = httpx.get(f"{lag_server.url}/api/groups/x", params={"range": "1y"}, timeout=10)
    assert response.status_code == 400


@pytest.mark.browser
async def test_groups_pages_in_the_browser(lag_server, kafka_bootstrap, page) -> None:
    suffix = uuid.uuid4().hex[:8]
    hostile = f"g-<img src=x onerror=alert(1)>-'\"-{suffix}"
    topic = f"t-ui-{suffix}"
    await _lagging_group(kafka_bootstrap, hostile, topic)
    # The consumer left with lag behind it: STOP once the window (4 looks) is full.
    body = _wait_for_group(lag_server, hostile, status="ERR")
    assert body["partitions"][0]["status"] == "STOP"

    await page.goto(f"{lag_server.url}/groups")
    await page.fill("#group-query", suffix)
    await page.wait_for_function("() => document.querySelectorAll('#groups tbody tr').length === 1")
    row = page.locator("#groups tbody tr").first
    assert await row.get_attribute("data-group") == hostile
    assert await row.locator("[data-status]").inner_text() == "ERR"
    assert await row.locator("td.lag").inner_text() == "3"
    await row.locator(".spark canvas").wait_for()

    await page.select_option("#group-status", "OK")
    await page.wait_for_function("() => !document.querySelector('#groups tbody tr')")
    await page.select_option("#group-status", "")
    await page.locator("#groups tbody tr").first.wait_for()

    await page.get_by_role("link", name=hostile).click()
    await page.wait_for_url("**/groups/**")
    assert await page.locator("h1").inner_text() == f"{hostile} ERR"
    assert await page.locator("#group-partitions tbody tr").count() == 2
    first = page.locator("#group-partitions tbody tr").first
    assert await first.locator("td.lag").inner_text() == "3"
    assert await first.locator("[data-status]").inner_text() == "STOP"
    await page.locator("#lag-chart canvas").first.wait_for()
    assert await page.locator("#group-history tbody tr").count() >= 1
    await page.locator("a[data-range='6h']").click()
    await page.wait_for_url("**range=6h")
    await page.locator("#lag-chart canvas").first.wait_for()

    await page.goto(f"{lag_server.url}/clusters/local/topics/{topic}")
    await page.locator("#topic-groups").get_by_role("link", name=hostile).click()
    await page.wait_for_url("**/groups/**")
    assert page.problems == []


@pytest.mark.browser
async def test_a_group_briefly_behind_reads_as_its_chart_does(
    threshold_server, kafka_bootstrap, page
) -> None:
    """Burrow calls a consumer that catches up between bursts OK; its time lag crossed the
    threshold, so the group is WARN, stays WARN after it caught up, and says why."""
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"t-slow-{suffix}", f"g-slow-{suffix}"
    await create_topic(kafka_bootstrap, topic)
    await produce(kafka_bootstrap, topic, [(None, b"x", ())])
    consumer = await joined_consumer(kafka_bootstrap, topic, group)
    try:
        partition = TopicPartition(topic, 0)
        await consumer.commit({partition: 1})
        # The waits run in a thread: the member must keep heartbeating meanwhile, or the
        # group rebalances and the next commit is refused.
        await asyncio.to_thread(_wait_for_group, threshold_server, group, "OK")
        await produce(kafka_bootstrap, topic, [(None, b"y", ())])
        behind = await asyncio.to_thread(
            _wait_for_group, threshold_server, group, "WARN",
            lambda body: body["health"]["time_lag_status"] == "WARN",
        )  # fmt: skip
        assert behind["health"]["burrow_status"] == "OK"
        await consumer.commit({partition: 2})  # caught up again
        held = await asyncio.to_thread(
            _wait_for_group, threshold_server, group, "WARN",
            lambda body: body["health"]["look_status"] == "OK",
        )  # fmt: skip
    finally:
        await consumer.stop()
    assert held["totallag"] == 0 and held["health"]["held_until_ms"] > held["sampled_at_ms"]
    peak = max(value for value in held["series"]["max_time_lag_s"] if value is not None)
    assert peak >= 1.0  # the chart shows what the status says
    listed = httpx.get(f"{threshold_server.url}/api/groups", params={"q": group}).json()
    assert listed["groups"][0]["peak_time_lag_s"] >= 1.0
    assert listed["groups"][0]["worst_status"] == "WARN"

    await page.goto(f"{threshold_server.url}/groups/{group}")
    assert await page.locator("h1 [data-status]").inner_text() == "WARN"
    explanation = await page.locator("#group-health").inner_text()
    assert "Held at WARN: this look alone is OK" in explanation
    assert "warning at 1 s" in explanation
    await page.goto(f"{threshold_server.url}/groups?q={group}")
    row = page.locator("#groups tbody tr").first
    assert await row.locator("[data-status]").inner_text() == "WARN"
    assert (await row.locator("td.peak").inner_text()).endswith(" s")
    assert page.problems == []


@pytest.mark.browser
async def test_reset_offsets_with_a_preview_then_delete_the_group_in_the_browser(
    lag_server, kafka_cluster, page
) -> None:
    from collectors.kafka.admin import admin_client
    from collectors.kafka.lag_look import look_at_group

    suffix = uuid.uuid4().hex[:8]
    group, topic = f"g-reset-<b>'\"-{suffix}", f"t-reset-{suffix}"
    await _lagging_group(kafka_cluster.bootstrap, group, topic)  # committed 2 and 2
    _wait_for_group(lag_server, group)
    await page.goto(f"{lag_server.url}/groups/{quote(group, safe='')}?cluster=local")
    await page.locator("#group-actions summary").click()
    await page.locator("#reset-offsets").click()
    await page.wait_for_url("**/reset-offsets?**")
    assert group in await page.locator("h1").inner_text()

    await page.select_option("#reset-strategy", "earliest")
    await page.locator("#reset-form button[type=submit]").click()
    await page.locator("#reset-rows").wait_for()
    assert "4 records read again" in await page.locator("#reset-summary").inner_text()
    first = page.locator("#reset-rows tbody tr").first
    assert await first.get_by_role("link", name="2 read again").get_attribute("href") == (
        f"/events?cluster=local&topic={topic}&partition=0&offset_from=0&offset_to=1"
    )
    await page.locator("#reset-apply").click()
    await page.locator("#reset-done").wait_for()
    outcomes = await page.locator("#reset-outcomes tbody td:last-child").all_inner_texts()
    assert outcomes == ["reset", "reset"]
    async with admin_client(kafka_cluster) as admin:
        look = await look_at_group(admin, group)
    assert look is not None and look.committed == {(topic, 0): 0, (topic, 1): 0}

    await page.get_by_role("link", name="Back to the group").click()
    changes = page.locator("#group-changes")
    assert "Offsets reset to earliest on all its topics (2 partitions, 4 to read again)" in (
        await changes.inner_text()
    )

    await page.locator("#group-actions summary").click()
    await page.locator("#delete-group-form input[name=confirm]").fill(group)
    await page.locator("#delete-group").click()
    await page.wait_for_url("**/groups?cluster=local")
    async with admin_client(kafka_cluster) as admin:
        look = await look_at_group(admin, group)
    assert look is None or look.committed == {}
    assert page.problems == []


@pytest.mark.browser
async def test_a_topics_offsets_are_deleted_from_the_group_page_in_the_browser(
    lag_server, kafka_cluster, page
) -> None:
    from collectors.kafka.admin import admin_client
    from collectors.kafka.lag_look import look_at_group

    suffix = uuid.uuid4().hex[:8]
    group, topic = f"g-offdel-<i>'\"-{suffix}", f"t-offdel-{suffix}"
    await _lagging_group(kafka_cluster.bootstrap, group, topic)  # committed 2 and 2
    _wait_for_group(lag_server, group)
    await page.goto(f"{lag_server.url}/groups/{quote(group, safe='')}?cluster=local")
    await page.locator("#group-actions summary").click()
    form = page.locator(f".delete-offsets-form[data-topic='{topic}']")
    await form.locator("input[name=confirm]").fill("not-the-topic")
    await form.get_by_role("button", name="Delete offsets").click()
    assert f"type the topic's name, {topic}" in await page.locator("body").inner_text()
    async with admin_client(kafka_cluster) as admin:
        look = await look_at_group(admin, group)
    assert look is not None and look.committed == {(topic, 0): 2, (topic, 1): 2}

    await page.go_back()
    await page.locator("#group-actions summary").click()
    await form.locator("input[name=confirm]").fill(topic)
    await form.get_by_role("button", name="Delete offsets").click()
    await page.wait_for_url("**/groups/*?cluster=local")
    assert group in await page.locator("h1").inner_text()
    changes = await page.locator("#group-changes").inner_text()
    assert f"Offsets deleted for topic {topic} (2 partitions)" in changes
    async with admin_client(kafka_cluster) as admin:
        look = await look_at_group(admin, group)
    assert look is None or look.committed == {}
    assert page.problems == []
