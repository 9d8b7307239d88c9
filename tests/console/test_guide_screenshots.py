"""Every page of the console on the demo shop's traffic, in Chromium: each page renders
(HTTP 200, its heading, no script error, no dialog), and its JSON twin answers with the
shape its endpoint declares. The guide's screenshots are taken of the same tour by
scripts/screenshots.py.

The same tour holds the layout and accessibility to account, on a wide screen in the light
theme and on a phone in the dark one: the page never scrolls sideways, no table heading
breaks inside a word, and axe-core finds nothing serious or critical. The top bar's two
buttons (the Menu of a narrow screen, the time zone) are tried on the same demo."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from console.demo import tour
from console.demo.runner import CLUSTER_NAME
from tests.axe_core import axe_path, serious_violations
from tests.browser import watch_for_errors
from tests.conftest import free_port
from tests.console.api_shapes import operation_for, shape_problems
from tests.layout_checks import layout_problems

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

READER_ZONE = "Asia/Kolkata"  # +05:30 all year: local time never equals UTC
LOCAL_LABEL = re.compile(r"^Local time \(Asia/(Kolkata|Calcutta)\)$")  # ICU may say Calcutta
VIEWS: tuple[tuple[int, int, Literal["light", "dark"]], ...] = (  # width, height, theme
    (1440, 900, "light"),
    (390, 844, "dark"),
)


async def test_every_page_renders_the_demo_traffic(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path, browser: Browser
) -> None:
    axe_source = axe_path().read_text()
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
        context = await browser.new_context(timezone_id=READER_ZONE)
        try:
            page = await context.new_page()
            page.set_default_timeout(15_000)
            errors = watch_for_errors(page)
            for width, height, scheme in VIEWS:
                await page.set_viewport_size({"width": width, "height": height})
                await page.emulate_media(color_scheme=scheme)
                for _name, path, expected in tour.pages(ids):
                    answer = await page.goto(url + path)
                    assert answer is not None and answer.status == 200, (path, answer)
                    await page.wait_for_load_state("networkidle")
                    heading = await page.inner_text("h1")
                    assert expected in heading, (path, expected, heading)
                    where = f"{path} at {width} px, {scheme}"
                    problems += [f"{where}: {p}" for p in await layout_problems(page)]
                    for violation in await serious_violations(page, axe_source):
                        nodes = "\n    ".join(violation["nodes"])
                        problems.append(f"{where}: axe {violation['impact']} {violation['id']}"
                                        f" ({violation['help']})\n    {nodes}")  # fmt: skip
            assert problems == [], "\n".join(problems)
            await _the_skip_link_and_the_menu_work_on_a_phone(page, url)
            await _times_switch_between_utc_and_local_time(page, url, ids)
            assert errors == []
        finally:
            await context.close()


async def _the_skip_link_and_the_menu_work_on_a_phone(page: Page, url: str) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(url + "/groups")
    await page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    skip = page.locator(".skip-link")
    await expect(skip).to_be_focused()
    assert await skip.evaluate("link => link.getBoundingClientRect().left >= 0")
    menu = page.get_by_role("button", name="Menu")
    admin = page.locator("#nav-areas").get_by_role("link", name="Admin")
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await expect(admin).to_be_hidden()
    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await admin.click()
    await expect(page.locator("h1")).to_contain_text("Administration")
    await page.set_viewport_size({"width": 1440, "height": 900})
    await expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    await expect(admin).to_be_visible()  # a wide screen shows the areas, no Menu


async def _times_switch_between_utc_and_local_time(page: Page, url: str, ids: tour.TourIds) -> None:
    await page.goto(url + f"/events/{ids.event}")
    moment = page.locator("dd time").first
    machine = await moment.get_attribute("datetime")
    assert machine is not None and machine.endswith("Z")
    utc_text = await moment.inner_text()
    assert utc_text.rstrip("Z").replace("T", " ") == machine.rstrip("Z").replace("T", " ")
    local = datetime.fromisoformat(machine).astimezone(ZoneInfo(READER_ZONE))
    local_text = local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    if "T" not in utc_text:
        local_text = local_text.replace("T", " ")

    toggle = page.locator("#time-zone")
    await expect(toggle).to_have_text("UTC")
    await toggle.click()
    await expect(toggle).to_have_text(LOCAL_LABEL)
    await expect(moment).to_have_text(local_text)
    await expect(moment).to_have_attribute("title", f"{utc_text} (UTC)")

    # Remembered: the next page (a table with its heading, rows refreshed in place) is local too.
    await page.goto(url + "/events")
    await expect(page.locator("#time-zone")).to_have_text(LOCAL_LABEL)
    await expect(page.locator("th [data-zone-label]")).to_have_text("local")
    first_row_time = page.locator("#event-rows time").first
    row_machine = await first_row_time.get_attribute("datetime")
    assert row_machine is not None
    row_local = datetime.fromisoformat(row_machine).astimezone(ZoneInfo(READER_ZONE))
    await expect(first_row_time).to_contain_text(row_local.strftime("%H:%M:%S"))

    # The lag chart draws its time axis in the same zone, and back in UTC after a click.
    await page.goto(url + f"/groups/{ids.group}?cluster={CLUSTER_NAME}")
    chart = page.locator("#lag-chart")
    await expect(chart).to_have_attribute("data-zone", re.compile(r"^local time \(Asia/"))
    await page.locator("#time-zone").click()
    await expect(page.locator("#time-zone")).to_have_text("UTC")
    await expect(chart).to_have_attribute("data-zone", "UTC")
