"""Every page of the console on the demo shop's traffic, in Chromium: each page renders
(HTTP 200, its heading, no script error, no dialog), and its JSON twin answers with the
shape its endpoint declares. The guide's screenshots are taken of the same tour by
scripts/screenshots.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from console.demo import tour
from tests.conftest import free_port
from tests.console.api_shapes import operation_for, shape_problems

pytestmark = [pytest.mark.kafka, pytest.mark.browser]


async def test_every_page_renders_the_demo_traffic(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path, page
):
    prefix = f"t-guide-{uuid.uuid4().hex[:8]}"
    demo = tour.running_demo(
        kafka_bootstrap, tmp_path, prefix, free_port(), registry_url=schema_registry_url
    )
    async with demo as (url, shop):
        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            ids = await tour.wait_for_traffic(client, shop, prefix)
            assert ids.avro_event is not None  # the tour includes the Avro pages
            problems: list[str] = []
            for _name, page_path, _expected in tour.pages(ids):
                path = page_path.split("#")[0]
                if operation_for("/api" + path) is None:
                    continue  # a page without a twin (/admin lists users and tokens)
                answer = await client.get("/api" + path)
                problems += shape_problems("/api" + path, answer.status_code, answer.json())
            assert problems == [], "\n".join(problems)
        await page.set_viewport_size({"width": 1440, "height": 900})
        for _name, path, expected in tour.pages(ids):
            answer = await page.goto(url + path)
            assert answer is not None and answer.status == 200, (path, answer)
            await page.wait_for_load_state("networkidle")
            heading = await page.inner_text("h1")
            assert expected in heading, (path, expected, heading)
        assert page.problems == []
