"""Every page of the console on the demo shop's traffic, in Chromium: each page renders
(HTTP 200, its heading, no script error, no dialog), and its JSON twin answers with the
shape its endpoint declares. The guide's screenshots are taken of the same tour by
scripts/screenshots.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from collectors.index.engine import create_index_engine
from console.app import create_app
from console.demo import tour
from console.demo.runner import DemoOptions, demo_settings
from console.demo.shop import Shop
from tests.conftest import serve_in_thread
from tests.console.api_shapes import operation_for, shape_problems

pytestmark = [pytest.mark.kafka, pytest.mark.browser]


async def test_every_page_renders_the_demo_traffic(kafka_bootstrap: str, tmp_path: Path, page):
    prefix = f"t-guide-{uuid.uuid4().hex[:8]}"
    options = DemoOptions(index_url=f"sqlite:///{tmp_path / 'guide.db'}", topic_prefix=prefix)
    settings = demo_settings(kafka_bootstrap, options)
    engine = create_index_engine(settings.index.url)
    with serve_in_thread(create_app(settings, mode="all", engine=engine)) as url:
        shop = Shop(kafka_bootstrap, f"{url}/v1/traces", prefix=prefix, rate=10, seed=5,
                    odds=tour.TOUR_ODDS, pace=tour.TOUR_PACE)  # fmt: skip
        await shop.start()
        try:
            async with httpx.AsyncClient(base_url=url, timeout=15) as client:
                ids = await tour.wait_for_traffic(client, shop, prefix)
                problems: list[str] = []
                for _name, path, _expected in tour.pages(ids):
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
        finally:
            await shop.stop()
    engine.dispose()
