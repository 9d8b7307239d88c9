"""The on-call journeys, end to end on the demo shop, in Chromium: what a person does at
3 a.m. must take few steps and must not mislead."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from console.demo import tour
from console.demo.runner import CLUSTER_NAME
from tests.conftest import free_port, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

SAGA_OVER = {"compensated", "compensating", "compensation_incomplete", "completed", "failed"}


async def test_the_on_call_journeys_on_the_demo(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path, page
) -> None:
    prefix = f"t-oncall-{uuid.uuid4().hex[:8]}"
    demo = tour.running_demo(
        kafka_bootstrap, tmp_path, prefix, free_port(), registry_url=schema_registry_url
    )
    async with demo as (url, shop), httpx.AsyncClient(base_url=url, timeout=20) as client:
        ids = await tour.wait_for_traffic(client, shop, prefix)
        await page.set_viewport_size({"width": 1440, "height": 900})

        # 1. A correlation id from the home page's search box to its trace: 2 actions.
        await page.goto(url + "/")
        box = page.locator("#overview-search input[name=q]")
        await box.fill(ids.correlation_id)
        await box.press("Enter")
        await page.wait_for_url(f"**/trace/{quote(ids.correlation_id)}")
        assert ids.correlation_id in await page.locator("h1").inner_text()

        # 2. A dead letter of a saga that is over warns, and "Redrive all" leaves it out.
        async def letter_of_an_ended_saga() -> dict[str, Any] | None:
            listing = await client.get(f"/api/dlq/{CLUSTER_NAME}/{ids.dlq_topic}")
            for m in listing.json()["messages"]:
                path = f"/dlq/{CLUSTER_NAME}/{m['topic']}/{m['partition']}/{m['offset']}"
                detail = (await client.get("/api" + path)).json() | {"path": path}
                if (detail.get("saga") or {}).get("status") in SAGA_OVER:
                    return detail
            return None

        letter = await wait_until(letter_of_an_ended_saga, timeout_s=60)
        await page.goto(url + letter["path"])
        warning = await page.locator("#saga-warning").inner_text()
        assert f"Saga {letter['saga']['saga_id']} is over" in warning
        await page.goto(f"{url}/dlq/{CLUSTER_NAME}/{ids.dlq_topic}")
        await page.locator("#redrive-all").click()
        await page.locator("#preview-count").wait_for()
        assert "They are left out" in await page.locator("#saga-warning").inner_text()
        summary = await page.locator("#preview-count").locator("xpath=..").inner_text()
        assert re.search(r"\(([0-9,]+) of sagas that are over\)", summary), summary
        to_send = int((await page.locator("#preview-count").inner_text()).replace(",", ""))
        if to_send:
            confirm = await page.locator("#confirm").inner_text()
            assert confirm == f"Confirm redrive of {to_send} records"

        # 3. The slow group's status says what its chart shows.
        group_path = f"/groups/{quote(ids.group)}?cluster={CLUSTER_NAME}"
        body = (await client.get("/api" + group_path)).json()
        await page.goto(url + group_path)
        await page.locator("#lag-chart canvas").first.wait_for()
        shown = await page.locator("h1 [data-status]").inner_text()
        health = body["health"]
        peaks = [v for v in body["series"]["max_time_lag_s"] if v is not None]
        warn_s = health["time_lag_warn_s"]
        if peaks and max(peaks) >= warn_s:  # the demo is younger than the hold
            assert shown in ("WARN", "ERR"), (shown, max(peaks))
        if shown == "OK":
            assert not peaks or max(peaks) < warn_s
        explanation = await page.locator("#group-health").inner_text()
        assert re.search(r"Time lag [0-9.]+ s|No time lag is known yet", explanation)

        # 4. An alerts page left open shows an alert that starts firing, without a reload.
        await page.goto(url + "/alerts")
        token = await page.locator("meta[name=csrf-token]").get_attribute("content")
        rule = {"name": "DemoDeadLetters", "kind": "dlq", "threshold": 0, "window": "1h"}
        saved = await client.post(
            "/api/alerts/rules", json=rule, headers={"X-CSRF-Token": token or ""}
        )
        assert saved.status_code == 201, saved.text
        firing = page.locator("#firing tbody tr").filter(has_text="DemoDeadLetters")
        await firing.first.wait_for(timeout=45_000)  # one evaluation + one refresh
        # the nav's count followed the same refresh
        assert int(await page.locator("#nav-firing").inner_text()) >= 1
    assert page.problems == []
