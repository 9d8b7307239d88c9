"""Hostile data on every page that shows it: no script runs, no dialog opens, nothing is
injected into the DOM (tests/console/xss_corpus.py has the corpus).

The content security policy would block most inline script anyway, so the test does not
lean on it: it also fails on any CSP violation (a blocked injection is still an injection)
and on any element carrying an event-handler attribute or a javascript:/data: URL.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.browser import watch_for_errors
from tests.console.xss_corpus import Corpus
from tests.kafka_helpers import create_topic, produce

pytestmark = pytest.mark.browser

# A violation caused by a third-party bundle (htmx adding its own <style>)
# names that file; one caused by markup in the page names the page itself.
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  if ((event.sourceFile || "").includes("/static/vendor/")) return;
  (window.__csp = window.__csp || []).push(
    `${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""
OBEYS_BIDI = r"() => /[\u202a-\u202e\u2066-\u2069]/.test(document.body.innerText)"
# Every element and attribute the corpus could have smuggled into the page.
FIND_INJECTIONS = """
() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toUpperCase();
    for (const attribute of el.attributes) {
      const name = attribute.name.toLowerCase();
      const value = attribute.value.trim().toLowerCase();
      if (name.startsWith("on") || name.startsWith("hx-on")) found.push(`${tag} ${name}`);
      if (["href", "src", "action", "formaction", "data", "xlink:href"].includes(name)
          && (value.startsWith("javascript:") || value.startsWith("data:text/html")))
        found.push(`${tag} ${name}=${value.slice(0, 40)}`);
      if (name === "srcdoc") found.push(`${tag} srcdoc`);
    }
    if (tag === "SCRIPT" && !el.src) found.push("inline SCRIPT");
    if ((tag === "STYLE" && el.closest("body")) || tag === "IFRAME" || tag === "MATH")
      found.push(`${tag} element`);  // (bundles add their own <style> to the head)
    if (tag === "IMG" && el.getAttribute("src") === "x") found.push("IMG src=x");
  }
  return found;
}
"""
INDEX_DEADLINE_S = 60
GROUP_DEADLINE_S = 40


@dataclass
class Seeded:
    corpus: Corpus
    cluster: str
    offsets: list[tuple[int, int]]
    dlq_offsets: list[tuple[int, int]]


async def _wait_until(check, deadline_s: float, what: str) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def _csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/alerts")
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(live_server, kafka_bootstrap: str) -> Seeded:  # type: ignore[no-untyped-def]
    corpus = Corpus(topic=f"t-xss-{uuid.uuid4().hex[:8]}")
    cluster = live_server.settings.clusters[0].name
    await create_topic(kafka_bootstrap, corpus.topic)
    await create_topic(kafka_bootstrap, corpus.dlq_topic)
    offsets = await produce(kafka_bootstrap, corpus.topic, corpus.records(), partition=0)
    dlq_offsets = await produce(kafka_bootstrap, corpus.dlq_topic, corpus.dlq_records(), 0)

    # A consumer group with a hostile id commits on the topic, for /groups and the topic page.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=corpus.group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(corpus.topic, 0)])
        await consumer.commit({TopicPartition(corpus.topic, 0): 1})
    finally:
        await consumer.stop()

    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        spans = await client.post(
            "/v1/traces",
            json=corpus.otlp_request(time.time_ns()),
            headers={"Content-Type": "application/json"},
        )
        assert spans.status_code == 200, spans.text
        headers = {"X-CSRF-Token": await _csrf(client)}
        silence = await client.post(
            "/api/alerts/silences",
            headers=headers,
            json={
                "matchers": {"group": corpus.group_id, "topic": corpus.correlation_id},
                "duration": "1h",
                "comment": corpus.saga_id,
            },
        )
        assert silence.status_code == 201, silence.text
        rule = await client.post(
            "/api/alerts/rules",
            headers=headers,
            json={
                "name": f"xss_{corpus.run}",
                "kind": "dlq",
                "topic": f"{corpus.topic}*",
                "labels": {"team": corpus.group_id},
                "annotations": {"summary": corpus.correlation_id, "runbook": "javascript:alert(1)"},
            },
        )
        assert rule.status_code == 201, rule.text

        async def indexed() -> bool:
            answer = await client.get(
                "/api/events", params={"topic": f"{corpus.topic},{corpus.dlq_topic}", "limit": 500}
            )
            return len(answer.json()["events"]) == len(offsets) + len(dlq_offsets)

        await _wait_until(indexed, INDEX_DEADLINE_S, "the corpus to be indexed")

        async def group_sampled() -> bool:
            answer = await client.get("/api/groups", params={"q": corpus.run})
            return bool(answer.json()["groups"])

        await _wait_until(group_sampled, GROUP_DEADLINE_S, "the lag sampler to see the group")
    return Seeded(corpus, cluster, offsets, dlq_offsets)


async def assert_inert(page, url: str, *, expect_text: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Open `url`, let its scripts settle, and fail on any sign that data became code."""
    await page.add_init_script(WATCH_CSP)
    response = await page.goto(url)
    assert response is not None and response.status < 500, (url, response and response.status)
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("() => window.__xss") is None, f"script ran on {url}"
    assert await page.evaluate("() => window.__csp || []") == [], (
        f"CSP blocked injected code on {url}"
    )
    assert await page.evaluate(FIND_INJECTIONS) == [], f"markup injected on {url}"
    assert page.problems == [], f"{url}: {page.problems}"
    # Ids, services and errors carry U+202E: shown as \u202e, never obeyed ("\u202elive"
    # must not read as "evil").
    assert not await page.evaluate(OBEYS_BIDI), f"{url} obeys a direction override"
    if expect_text is not None:
        assert expect_text in await page.inner_text("body"), f"{url} does not show the data"


async def assert_all_inert(page, urls: list[str], tabs: int = 4) -> None:  # type: ignore[no-untyped-def]
    """assert_inert for many pages, a few tabs at a time (each tab watches its own errors)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)

    async def worker() -> None:
        tab = await page.context.new_page()
        tab.problems = watch_for_errors(tab)
        try:
            while not queue.empty():
                await assert_inert(tab, queue.get_nowait())
        finally:
            await tab.close()

    await asyncio.gather(*(worker() for _ in range(tabs)))


def event_url(base: str, cluster: str, topic: str, partition: int, offset: int) -> str:
    return f"{base}/events/{quote(cluster, safe='')}/{quote(topic, safe='')}/{partition}/{offset}"


async def test_event_search_and_every_event_detail(page, live_server, seeded: Seeded) -> None:
    corpus, base = seeded.corpus, live_server.url
    search = urlencode({"topic": f"{corpus.topic},{corpus.dlq_topic}", "limit": 200})
    await assert_inert(page, f"{base}/events?{search}", expect_text=corpus.run)
    await assert_inert(
        page, f"{base}/events?{urlencode({'correlation_id': corpus.correlation_id})}"
    )
    urls = [
        event_url(base, seeded.cluster, topic, partition, offset)
        for topic, offsets in (
            (corpus.topic, seeded.offsets),
            (corpus.dlq_topic, seeded.dlq_offsets),
        )
        for partition, offset in offsets
    ]
    await assert_all_inert(page, urls)
    # Template syntax in data is shown as typed, never evaluated.
    first = event_url(base, seeded.cluster, corpus.topic, *seeded.offsets[0])
    await assert_inert(page, first, expect_text="{{7*7}}")


async def test_live_tail_shows_new_hostile_rows_as_text(
    page, live_server, seeded: Seeded, kafka_bootstrap: str
) -> None:
    corpus = seeded.corpus
    await assert_inert(page, f"{live_server.url}/events?{urlencode({'topic': corpus.topic})}")
    await page.check("#live-tail")
    await page.wait_for_timeout(1500)  # the stream starts after the newest row shown
    await produce(kafka_bootstrap, corpus.topic, corpus.records()[:3], partition=0)
    await page.wait_for_selector("#event-rows tr.fresh", timeout=30_000)
    await page.wait_for_timeout(1500)
    assert await page.evaluate("() => window.__xss") is None
    assert await page.evaluate("() => window.__csp || []") == []
    assert await page.evaluate(FIND_INJECTIONS) == []
    assert page.problems == []


async def test_trace_lineage_and_topology(page, live_server, seeded: Seeded) -> None:
    corpus, base = seeded.corpus, live_server.url
    await assert_inert(
        page, f"{base}/trace/{quote(corpus.correlation_id, safe='')}", expect_text=corpus.run
    )
    await assert_inert(page, f"{base}/trace/{corpus.trace_id}", expect_text=corpus.run)
    await assert_all_inert(
        page,
        [
            f"{base}/lineage/{seeded.cluster}/{topic}/{partition}/{offset}"
            for topic, offsets in (
                (corpus.topic, seeded.offsets[:6]),
                (corpus.dlq_topic, seeded.dlq_offsets[:2]),
            )
            for partition, offset in offsets
        ],
    )
    await assert_inert(page, f"{base}/lineage?{urlencode({'event_id': corpus.correlation_id})}")
    await assert_inert(page, f"{base}/topology?window=60", expect_text=corpus.run)


async def test_dlq_pages_and_the_redrive_preview(page, live_server, seeded: Seeded) -> None:
    corpus, base = seeded.corpus, live_server.url
    await assert_inert(page, f"{base}/dlq", expect_text=corpus.dlq_topic)
    dlq = f"{base}/dlq/{seeded.cluster}/{quote(corpus.dlq_topic)}"
    await assert_inert(page, dlq, expect_text="failed:")
    await assert_inert(page, dlq + "?" + urlencode({"error_class": "<script>x</script>"}))
    await assert_all_inert(
        page, [f"{dlq}/{partition}/{offset}" for partition, offset in seeded.dlq_offsets]
    )
    preview = urlencode(
        {"kind": "redrive", "cluster": seeded.cluster, "topic": corpus.dlq_topic, "dlq_only": "1"}
    )
    await assert_inert(page, f"{base}/actions/new?{preview}")
    items = urlencode(
        [
            ("kind", "replay"),
            ("cluster", seeded.cluster),
            ("target_topic", f"{corpus.topic}-replay"),
        ]
        + [("item", f"{corpus.topic}/{p}/{o}") for p, o in seeded.offsets[:5]]
    )
    await assert_inert(page, f"{base}/actions/new?{items}")


async def test_sagas_and_the_saga_timeline(page, live_server, seeded: Seeded) -> None:
    corpus, base = seeded.corpus, live_server.url
    await assert_inert(page, f"{base}/sagas?{urlencode({'id': corpus.saga_id[:20]})}")
    await assert_inert(page, f"{base}/sagas", expect_text=corpus.run)
    saga = f"{base}/sagas/{quote(corpus.saga_id, safe='')}?cluster={seeded.cluster}"
    await assert_inert(page, saga, expect_text=corpus.run)


async def test_groups_clusters_and_alerts(page, live_server, seeded: Seeded) -> None:
    corpus, base = seeded.corpus, live_server.url
    await assert_inert(page, f"{base}/groups", expect_text=corpus.run)
    group = f"{base}/groups/{quote(corpus.group_id, safe='')}?cluster={seeded.cluster}"
    await assert_inert(page, group, expect_text=corpus.run)
    topic = f"{base}/clusters/{seeded.cluster}/topics/{corpus.topic}"
    await assert_inert(page, topic, expect_text=corpus.run)
    await assert_inert(page, f"{base}/clusters/{seeded.cluster}", expect_text=corpus.topic)
    await assert_inert(page, f"{base}/alerts", expect_text=corpus.run)
    await assert_inert(page, f"{base}/alerts/rules", expect_text=corpus.run)
    await assert_inert(page, f"{base}/alerts/rules?edit=xss_{corpus.run}")
